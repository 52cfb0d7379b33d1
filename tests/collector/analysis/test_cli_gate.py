"""``faultprint compare --fail-on`` as CI runs it: a real CLI process against a real
collector that received the calls over OTLP/HTTP. Exit 1 when a rule trips,
0 when none does, 2 on usage or connection errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

from tests.collector.analysis.otlp_calls import send, version_spans, wait_for_calls
from tests.conftest import CollectorProcess, free_port


def faultprint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faultprint_collector.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_fail_on_exit_codes(start_collector: Callable[..., CollectorProcess]) -> None:
    collector = start_collector()
    spans = version_spans("stable-1", 500, {"parse": 25, "keyerror": 15}, seed=11)
    spans += version_spans("stable-2", 500, {"parse": 24, "keyerror": 16}, seed=12)
    spans += version_spans("canary", 500, {"parse": 25, "keyerror": 15, "schema": 30}, seed=13)
    send(collector.url, spans)
    wait_for_calls(collector.url, 1500)
    url = ["--url", collector.url]

    same = faultprint("compare", "stable-1", "stable-2", *url, "--fail-on", "new-modes,jsd>0.2")
    assert same.returncode == 0, same.stderr
    assert "the same failure modes" in same.stdout

    bad = faultprint("compare", "stable-1", "canary", *url, "--fail-on", "new-modes")
    assert bad.returncode == 1
    assert "New failure modes (1)" in bad.stdout
    assert "gate failed: new-modes = 1" in bad.stderr

    as_json = faultprint(
        "compare", "stable-1", "canary", *url, "--format", "json", "--fail-on", "rate-increase"
    )
    assert as_json.returncode == 1
    result = json.loads(as_json.stdout)
    assert result["new_modes"][0]["candidate_failures"] == 30
    assert result["gate"]["tripped"] is True

    untripped = faultprint("compare", "stable-1", "canary", *url, "--fail-on", "new-modes>3")
    assert untripped.returncode == 0

    md = faultprint("compare", "stable-1", "canary", *url, "--format", "markdown")
    assert md.returncode == 0 and md.stdout.startswith("### faultprint compare")

    usage = faultprint("compare", "stable-1", "canary", *url, "--fail-on", "new-modez")
    assert usage.returncode == 2 and "unknown rule" in usage.stderr
    # a threshold no rate can cross ("4" meant 4%) is a usage error, not a green gate
    percent = faultprint("compare", "stable-1", "canary", *url, "--fail-on", "failure-rate>4")
    assert percent.returncode == 2
    assert "between 0 and 1" in " ".join(percent.stderr.split())
    assert "0.04 for 4%" in " ".join(percent.stderr.split())
    assert faultprint("compare", "stable-1", *url).returncode == 2
    assert faultprint("compare", "a", "b", *url, "--format", "yaml").returncode == 2
    bad_time = faultprint("compare", "a", "b", *url, "--since", "last tuesday")
    assert bad_time.returncode == 2 and "invalid time" in bad_time.stderr

    # a version without calls (a typo, a canary that never ran) fails the gate
    missing = faultprint("compare", "stable-1", "nope", *url, "--fail-on", "new-modes")
    assert missing.returncode == 2
    assert "'nope'" in missing.stderr and "stable-1" in missing.stderr  # known versions listed
    neither = faultprint("compare", "nope1", "nope2", *url)
    assert neither.returncode == 2 and "'nope1' and 'nope2'" in neither.stderr
    same = faultprint("compare", "stable-1", "stable-1", *url)
    assert same.returncode == 2 and "two different versions" in same.stderr
    # so does a version never called at the --call-site (a typo there passed
    # the gate as "not enough data", exit 0)
    site = ["--call-site", "shop.sumarise", "--fail-on", "new-modes"]
    typo = faultprint("compare", "stable-1", "canary", *url, *site)
    assert typo.returncode == 2, typo.stdout
    assert "'shop.sumarise'" in typo.stderr and "shop.summarise" in typo.stderr  # known sites
    site = ["--call-site", "shop.summarise", "--fail-on", "new-modes"]
    assert faultprint("compare", "stable-1", "canary", *url, *site).returncode == 1

    # the API's validation errors reach the user with the parameter they name
    empty = faultprint("compare", "", "stable-2", *url)
    assert empty.returncode == 2 and "baseline" in empty.stderr
    long_site = faultprint("versions", *url, "--call-site", "x" * 300)
    assert long_site.returncode == 2 and "call_site" in long_site.stderr
    no_sql = faultprint("sql", "", *url)
    assert no_sql.returncode == 2 and "sql: " in no_sql.stderr
    far = faultprint("versions", *url, "--since", "100000w")
    assert far.returncode == 2 and "before 1970" in far.stderr

    down = faultprint("compare", "a", "b", "--url", f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 2 and "cannot reach" in down.stderr


def test_versions_show_and_sql_commands(start_collector: Callable[..., CollectorProcess]) -> None:
    collector = start_collector()
    send(collector.url, version_spans("m1", 200, {"timeout": 12, "parse": 6}, seed=5))
    wait_for_calls(collector.url, 200)
    url = ["--url", collector.url]

    versions = faultprint("versions", *url, "--format", "json")
    assert versions.returncode == 0, versions.stderr
    (row,) = json.loads(versions.stdout)["versions"]
    assert (row["model_version"], row["calls"], row["failures"]) == ("m1", 200, 18)
    table = faultprint("versions", *url)
    assert table.returncode == 0 and "m1" in table.stdout and "9.00%" in table.stdout

    top = json.loads(
        faultprint(
            "sql",
            "SELECT fingerprint_hex FROM fingerprints_v ORDER BY failures DESC LIMIT 1",
            *url,
            "--format",
            "json",
        ).stdout
    )["rows"][0][0]
    shown = faultprint("show", top, *url)
    assert shown.returncode == 0, shown.stderr
    assert "grouping components" in shown.stdout and "read timed out" in shown.stdout
    assert faultprint("show", "nothex", *url).returncode == 2
    missing = faultprint("show", "00000000000000aa", *url)
    assert missing.returncode == 2 and "404" in missing.stderr

    tsv = faultprint("sql", "SELECT count() FROM calls FINAL", *url, "--format", "tsv")
    assert tsv.stdout.splitlines() == ["count()", "200"]
    refused = faultprint("sql", "DROP TABLE calls", *url)
    assert refused.returncode == 2 and "read-only" in refused.stderr


def test_direct_store_reads_when_no_collector_owns_it(tmp_path) -> None:
    port = free_port()
    store = str(tmp_path / "store")
    collector = CollectorProcess(store=store, port=port, log_path=tmp_path / "c.log").start()
    try:
        send(collector.url, version_spans("m1", 150, {"parse": 9}, seed=8))
        send(collector.url, version_spans("m2", 40, {"parse": 2}, seed=9))
        wait_for_calls(collector.url, 190)
    finally:
        collector.stop()
    versions = faultprint("versions", "--store", store, "--format", "json")
    assert versions.returncode == 0, versions.stderr
    assert json.loads(versions.stdout)["versions"][0]["failures"] == 9
    assert [v["model_version"] for v in json.loads(versions.stdout)["versions"]] == ["m1", "m2"]
    compared = faultprint("compare", "m1", "m2", "--store", store, "--fail-on", "not-enough-data")
    assert compared.returncode == 1 and "not enough data" in compared.stdout
    missing = faultprint("compare", "m1", "m3", "--store", store, "--fail-on", "not-enough-data")
    assert missing.returncode == 2 and "'m3'" in missing.stderr
    far = faultprint("versions", "--store", store, "--until", "99999w")
    assert far.returncode == 2 and "before 1970" in far.stderr
    assert "Traceback" not in far.stderr


def test_a_store_grouped_by_two_strategies_says_so_in_the_cli_and_the_ui(
    tmp_path, start_collector: Callable[..., CollectorProcess]
) -> None:
    """Failures stored by a collector of an older fingerprint strategy, then new
    ones: ``faultprint versions`` and the UI's overview say that modes are
    counted once per strategy, and a comparison does not judge modes."""
    from datetime import timedelta

    import httpx
    from faultprint_collector.store import apply_migrations, open_store

    from tests.collector.analysis.conftest import T0, store_calls, synth_calls

    path = str(tmp_path / "store")
    store = open_store(path)
    try:
        apply_migrations(store)
        upgrade = T0 + timedelta(hours=6)
        for version, seed in (("m1", 1), ("m2", 2)):
            before = synth_calls(version, 300, {0xB1: 0.05}, seed=seed)
            after = synth_calls(version, 300, {0xD1: 0.05}, seed=seed + 10, start=upgrade)
            store_calls(store, before, strategy="v3")
            store_calls(store, after, strategy="v4")
    finally:
        store.close()

    listed = faultprint("versions", "--store", path)
    assert listed.returncode == 0, listed.stderr
    assert "strategies v3, v4" in " ".join(listed.stdout.split())
    compared = faultprint("compare", "m1", "m2", "--store", path, "--fail-on", "new-modes")
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert "failure modes not compared" in compared.stdout

    collector = start_collector(store=path)
    page = httpx.get(f"{collector.url}/", params={"window": "30d"}, timeout=30)
    assert page.status_code == 200
    assert 'id="grouping-note"' in page.text and "strategies v3, v4" in page.text
    compare_page = httpx.get(
        f"{collector.url}/compare",
        params={"baseline": "m1", "candidate": "m2", "window": "30d"},
        timeout=30,
    )
    assert compare_page.status_code == 200
    assert 'class="verdict warn"' in compare_page.text
    assert "failure modes not compared" in compare_page.text
    assert "No new modes." not in compare_page.text
