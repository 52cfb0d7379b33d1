"""The read API against a real collector: versions, fingerprints, one fingerprint,
compare, read-only SQL; validation errors; project isolation with API keys.

One collector (a real ``faultprint serve`` subprocess) for the module, with
keys for two projects; each project's calls arrive over OTLP/HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.collector.analysis.otlp_calls import send, version_spans, wait_for_calls
from tests.conftest import CollectorProcess, free_port

KEY_A = "key-for-project-a-0123456789"
KEY_B = "key-for-project-b-0123456789"
#: the key of a project that sends no calls
KEY_C = "key-for-project-c-0123456789"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    tmp = tmp_path_factory.mktemp("read_api")
    collector = CollectorProcess(
        store=str(tmp / "store"),
        port=free_port(),
        env={"FAULTPRINT_API_KEYS": f"alpha:{KEY_A},beta:{KEY_B},gamma:{KEY_C}"},
        log_path=tmp / "collector.log",
    ).start()
    try:
        spans = version_spans("v1", 400, {"parse": 20, "keyerror": 10}, seed=1)
        spans += version_spans("v2", 400, {"parse": 20, "ratelimit": 25, "schema": 15}, seed=2)
        send(collector.url, spans, api_key=KEY_A)
        send(collector.url, version_spans("other", 50, {"timeout": 5}, seed=3), api_key=KEY_B)
        wait_for_calls(collector.url, 800, api_key=KEY_A)
        wait_for_calls(collector.url, 50, api_key=KEY_B)
        yield collector
    finally:
        collector.stop()


def get(api: CollectorProcess, path: str, key: str = KEY_A, **params: object) -> httpx.Response:
    return httpx.get(
        f"{api.url}{path}", params=params, headers={"authorization": f"Bearer {key}"}, timeout=60
    )


def sql(api: CollectorProcess, statement: str, key: str = KEY_A) -> httpx.Response:
    return httpx.post(
        f"{api.url}/api/sql",
        json={"sql": statement},
        headers={"authorization": f"Bearer {key}"},
        timeout=60,
    )


def test_versions_carry_the_metrics_and_count_each_call_once(api: CollectorProcess) -> None:
    versions = {v["model_version"]: v for v in get(api, "/api/versions").json()["versions"]}
    assert set(versions) == {"v1", "v2"}
    v2 = versions["v2"]
    assert (v2["calls"], v2["failures"]) == (400, 60)
    assert v2["failure_rate"] == pytest.approx(0.15)
    lo, hi = v2["failure_rate_ci"]
    assert lo < 0.15 < hi
    assert v2["distinct_modes"] == 3
    assert 1 < v2["effective_modes"] <= 3
    assert v2["top3_share"] == 1
    assert 0 <= v2["repeatability"] <= 1
    for key in ("novelty_rate", "drift", "first_seen", "last_seen"):
        assert key in v2


def test_fingerprints_filter_by_version_and_category(api: CollectorProcess) -> None:
    fps = get(api, "/api/fingerprints", version="v1").json()["fingerprints"]
    assert sorted(f["failures"] for f in fps) == [10, 20]
    assert all("v1" in f["model_versions"] for f in fps)
    templates = {f["template"] for f in get(api, "/api/fingerprints").json()["fingerprints"]}
    assert any("rate limit" in t for t in templates)
    none = get(api, "/api/fingerprints", category="refusal").json()["fingerprints"]
    assert none == []
    exc = get(api, "/api/fingerprints", category="exception", limit=2).json()["fingerprints"]
    assert len(exc) == 2


def test_one_fingerprint_has_components_timeline_and_exemplars(api: CollectorProcess) -> None:
    fps = get(api, "/api/fingerprints", version="v2").json()["fingerprints"]
    parse = next(f for f in fps if "parse" in f["template"])
    d = get(api, f"/api/fingerprints/{parse['fingerprint']}").json()
    assert d["components"]["kind"] == "ValueError"
    assert d["components"]["call_site"] == "shop.summarise"
    assert "<" in d["components"]["template"]  # the item number is masked
    assert {v["model_version"] for v in d["versions"]} == {"v1", "v2"}
    assert sum(t["failures"] for t in d["timeline"]) == 40
    assert len(d["exemplars"]) == 10
    assert all(len(e["trace_id"]) == 32 and "parse" in e["message"] for e in d["exemplars"])


def test_one_fingerprints_window_limits_counts_and_exemplars(api: CollectorProcess) -> None:
    """An incident review asks for the calls of the incident's hours: since/until
    limit the failures and the exemplars, not only the timeline."""
    fps = get(api, "/api/fingerprints", version="v2").json()["fingerprints"]
    fp = next(f for f in fps if "parse" in f["template"])["fingerprint"]
    later = get(api, f"/api/fingerprints/{fp}", since="2030-01-01").json()
    assert (later["failures"], later["exemplars"], later["timeline"]) == (0, [], [])
    assert {v["model_version"]: v["failures"] for v in later["versions"]} == {"v1": 0, "v2": 0}
    assert all(v["trace_ids"] == [] for v in later["versions"])
    # the calls are ten minutes old: a window of the last day holds them all
    recent = get(api, f"/api/fingerprints/{fp}", since="1d").json()
    assert recent["failures"] == 40 and len(recent["exemplars"]) == 10
    assert recent["first_seen"] == later["first_seen"]


def test_stats_name_every_counter_from_the_start(collector: CollectorProcess) -> None:
    stats = httpx.get(f"{collector.url}/api/stats", timeout=30).json()
    counters = (
        "accepted_spans",
        "rejected_spans",
        "repeated_spans",
        "rejected_requests",
        "duplicate_requests",
        "rate_limited_requests",
        "spool_full_responses",
        "spool_errors",
        "busy_responses",
        "rows_written",
        "inserts",
        "reads_in_flight",
    )
    assert {name: stats.get(name) for name in counters} == dict.fromkeys(counters, 0)


def test_compare_reports_the_new_modes(api: CollectorProcess) -> None:
    r = get(api, "/api/compare", baseline="v1", candidate="v2").json()
    for side in ("baseline", "candidate"):
        assert set(r[side]) >= {
            "calls",
            "failures",
            "failure_rate",
            "failure_rate_ci",
            "distinct_modes",
            "effective_modes",
            "top3_share",
            "novelty_rate",
            "repeatability",
        }
    assert set(r["failure_rate_change"]) >= {"delta", "p_value"}
    new = sorted(m["candidate_failures"] for m in r["new_modes"])
    assert new == [15, 25]
    # ten key errors in the baseline and none in an equally large candidate:
    # (1/2)^10 by chance, significant after correction
    assert [m["baseline_failures"] for m in r["vanished_modes"]] == [10]
    assert r["verdict"] and isinstance(r["notes"], list)
    assert 0 < r["jsd"] <= 1


def test_sql_reads_views_and_refuses_writes(api: CollectorProcess) -> None:
    rows = sql(api, "SELECT model_version, count() FROM failures_v GROUP BY 1 ORDER BY 1").json()
    assert rows["rows"] == [["v1", 30], ["v2", 60]]
    for statement in (
        "DROP TABLE calls",
        "INSERT INTO calls (project) VALUES ('x')",
        "SELECT 1; DROP TABLE calls",
        "SELECT * FROM system.tables",
        "SELECT * FROM merge('default', 'calls')",
        "SELECT * FROM file('/etc/passwd', 'LineAsString')",
        "SELECT file('/etc/passwd')",
        "SELECT 1 INTO OUTFILE '/tmp/faultprint-out'",
        "SELECT * FROM nowhere",
        "SELECT (",
    ):
        response = sql(api, statement)
        assert response.status_code == 400, statement
        assert response.json()["detail"]
    assert sql(api, "SELECT count() FROM calls FINAL").json()["rows"] == [[800]]


def test_sql_answers_nan_and_infinity(api: CollectorProcess) -> None:
    # an average over no rows is NaN, which JSON cannot carry as a number
    response = sql(api, "SELECT avg(latency_ms), 1 / 0 FROM calls WHERE model_version = 'none'")
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [["nan", "inf"]]


def test_projects_are_isolated(api: CollectorProcess) -> None:
    other = get(api, "/api/versions", key=KEY_B).json()["versions"]
    assert [v["model_version"] for v in other] == ["other"]
    assert sql(api, "SELECT count() FROM calls", key=KEY_B).json()["rows"] == [[50]]
    assert sql(api, "SELECT count() FROM fingerprints_v", key=KEY_B).json()["rows"] == [[1]]
    assert sql(api, "SELECT sum(calls) FROM version_hourly_v", key=KEY_B).json()["rows"] == [[50.0]]
    fp = get(api, "/api/fingerprints").json()["fingerprints"][0]["fingerprint"]
    assert get(api, f"/api/fingerprints/{fp}", key=KEY_B).status_code == 404
    # another project's versions are no versions at all here
    r = get(api, "/api/compare", key=KEY_B, baseline="v1", candidate="v2")
    assert r.status_code == 404 and "'v1' and 'v2'" in r.json()["detail"]
    assert "other" in r.json()["detail"] and "v2," not in r.json()["detail"]
    assert httpx.get(f"{api.url}/api/versions", timeout=30).status_code == 401


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/api/fingerprints/not-hex", {}, 400),
        ("/api/fingerprints/00000000000000ab", {}, 404),
        ("/api/fingerprints/00000000000000ab0", {}, 422),
        ("/api/versions", {"since": "yesterday"}, 400),
        ("/api/versions", {"since": "1d", "until": "2d"}, 400),
        ("/api/fingerprints", {"limit": 0}, 422),
        ("/api/compare", {"baseline": "v1"}, 422),
        ("/api/compare", {"baseline": "v1", "candidate": "v2", "alpha": 2}, 422),
        ("/api/compare", {"baseline": "v1", "candidate": "v2", "since": "99999999d"}, 400),
        ("/api/incidents", {"limit": 5000}, 422),
        ("/api/incidents", {"since": "1h", "until": "2h"}, 400),
        # both read against one "now": the same time, an empty window
        ("/api/incidents", {"since": "1d", "until": "1d"}, 400),
        ("/api/versions", {"since": "30m", "until": "30m"}, 400),
        ("/api/fingerprints", {"since": "2h", "until": "2h"}, 400),
        ("/api/fingerprints/00000000000000ab", {"since": "1d", "until": "1d"}, 400),
        ("/api/compare", {"baseline": "v1", "candidate": "v2", "since": "1d", "until": "1d"}, 400),
        ("/api/incidents", {"since": "1d", "until": "yesterday"}, 400),
        ("/api/incidents", {"until": "99999w"}, 400),
        # durations whose date the store cannot hold (year ~110)
        ("/api/versions", {"since": "100000w"}, 400),
        ("/api/versions", {"until": "99999w"}, 400),
        ("/api/incidents", {"since": "99999w"}, 400),
        ("/api/fingerprints", {"since": "99999w"}, 400),
        ("/api/fingerprints", {"until": "99999w"}, 400),
        ("/api/fingerprints/00000000000000ab", {"since": "99999w"}, 400),
        ("/api/compare", {"baseline": "v1", "candidate": "v2", "until": "99999w"}, 400),
        ("/api/versions", {"since": "0001-01-01T00:00:00+01:00"}, 400),
        # a comparison needs two versions that have calls
        ("/api/compare", {"baseline": "v1", "candidate": "nope"}, 404),
        ("/api/compare", {"baseline": "v1", "candidate": "v1"}, 400),
        # ... in the window compared
        ("/api/compare", {"baseline": "v1", "candidate": "v2", "since": "2099-01-01"}, 404),
        (
            "/api/compare",
            {"baseline": "v1", "candidate": "v2", "since": "2020-01-01", "until": "2020-01-02"},
            404,
        ),
    ],
)
def test_bad_parameters_are_4xx_with_a_reason(
    api: CollectorProcess, path: str, params: dict, status: int
) -> None:
    response = get(api, path, **params)
    assert response.status_code == status
    assert response.json()["detail"]


def test_incidents_still_answer_for_the_cli(api: CollectorProcess, tmp_path: Path) -> None:
    rows = get(api, "/api/incidents", since="24h", limit=3).json()["incidents"]
    assert [r["failures"] for r in rows] == [40, 25, 15]
    assert all(r["first_seen"] and r["model_versions"] for r in rows)


def test_a_missing_version_is_named_with_the_known_ones(api: CollectorProcess) -> None:
    response = get(api, "/api/compare", baseline="nope1", candidate="v2")
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "'nope1'" in detail and "'v2'" not in detail
    assert "known versions" in detail and "v1" in detail
    same = get(api, "/api/compare", baseline="v2", candidate="v2").json()["detail"]
    assert "same version" in same and "two different versions" in same


def test_times_up_to_the_end_of_2105_are_accepted(api: CollectorProcess) -> None:
    for until in ("2105-06-01", "2105-12-31T23:59:59"):
        response = get(api, "/api/versions", until=until)
        assert response.status_code == 200, response.text
        assert len(response.json()["versions"]) == 2
    refused = get(api, "/api/versions", until="2106-01-01")
    assert refused.status_code == 400
    assert "the end of 2105" in refused.json()["detail"]


def test_a_long_duration_leaves_the_connection_usable(api: CollectorProcess) -> None:
    with httpx.Client(headers={"authorization": f"Bearer {KEY_A}"}, timeout=60) as client:
        bad = client.get(f"{api.url}/api/versions", params={"since": "99999w"})
        assert bad.status_code == 400 and "before 1970" in bad.json()["detail"]
        ok = client.get(f"{api.url}/api/versions", params={"since": "2000w"})
        assert ok.status_code == 200 and len(ok.json()["versions"]) == 2


def test_incidents_take_a_window_end(api: CollectorProcess) -> None:
    # the calls are ten minutes old: a window that ends 3 hours ago holds none
    assert get(api, "/api/incidents", since="30d", until="3h").json()["incidents"] == []
    rows = get(api, "/api/incidents", since="30d", until="1m").json()["incidents"]
    assert [r["failures"] for r in rows][:3] == [40, 25, 15]
    backwards = get(api, "/api/incidents", since="1h", until="2h")
    assert backwards.status_code == 400
    assert (
        backwards.json()["detail"]
        == get(api, "/api/versions", since="1h", until="2h").json()["detail"]
    )
    params = httpx.get(f"{api.url}/openapi.json", timeout=30).json()["paths"]["/api/incidents"]
    assert {p["name"] for p in params["get"]["parameters"]} >= {"since", "until", "limit"}


@pytest.mark.parametrize("path", ["/api/versions", "/api/incidents"])
def test_an_empty_answer_says_the_project_has_no_calls(api: CollectorProcess, path: str) -> None:
    key = path.rsplit("/", 1)[1]
    empty = get(api, path, key=KEY_C).json()
    assert empty == {key: [], "note": "the store holds no calls yet (of project 'gamma')"}
    # a project with calls: no note, also when its window is empty
    assert "note" not in get(api, path).json()
    assert get(api, path, since="30d", until="3h").json() == {key: []}


def test_counts_are_integers_when_whole(api: CollectorProcess) -> None:
    versions = get(api, "/api/versions").json()["versions"]
    fps = get(api, "/api/fingerprints").json()["fingerprints"]
    detail = get(api, f"/api/fingerprints/{fps[0]['fingerprint']}").json()
    counts = [v[k] for v in versions for k in ("calls", "failures")]
    counts += [f["failures"] for f in fps] + [detail["failures"]]
    counts += [v["failures"] for v in detail["versions"] + detail["timeline"]]
    assert all(type(c) is int for c in counts), counts


def test_sql_of_aggregate_states_points_to_the_view(api: CollectorProcess) -> None:
    response = sql(api, "SELECT * FROM fingerprint_catalog LIMIT 2")
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "exemplar_trace_ids" in detail and "fingerprint_catalog_v" in detail
    assert "deserialization" not in detail
    view = sql(api, "SELECT fingerprint_hex, exemplar_trace_ids FROM fingerprint_catalog_v")
    assert view.status_code == 200 and view.json()["rows"]
    plain = sql(api, "SELECT model_version, count() FROM fingerprint_catalog GROUP BY 1")
    assert plain.status_code == 200
