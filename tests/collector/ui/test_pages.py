"""The UI's pages: bad input gets a page that says why, never a 500; the charts
cover the hours the tables count."""

from __future__ import annotations

import random
import re
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from faultprint_collector.analysis import concerns
from faultprint_collector.analysis._reference import Call
from faultprint_collector.queries import list_versions
from faultprint_collector.store import Store
from faultprint_collector.ui._pages import WINDOWS, _hourly_rates, _sparkline_series, templates

from tests.collector.analysis.conftest import T0, store_calls, underflowing_comparison
from tests.collector.analysis.otlp_calls import send, span, version_spans, wait_for_calls
from tests.conftest import CollectorProcess

HTML = {"accept": "text/html"}


@pytest.mark.parametrize("body", [b"key=%E2%82%AC", b"key=%ff%fe", b"key=a%0Ab", b"key=a%3Bb"])
def test_a_key_no_cookie_can_carry_is_a_400_page(collector: CollectorProcess, body: bytes) -> None:
    response = httpx.post(
        f"{collector.url}/ui/key",
        content=body,
        headers={**HTML, "content-type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert response.status_code == 400
    assert "not a valid API key" in response.text
    assert "set-cookie" not in response.headers


def test_a_plain_key_is_kept_in_a_cookie(collector: CollectorProcess) -> None:
    response = httpx.post(
        f"{collector.url}/ui/key",
        content=b"key=fpk_abc-DEF_123",
        headers={"content-type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert response.status_code == 303
    assert "faultprint_key=fpk_abc-DEF_123" in response.headers["set-cookie"]


def test_compare_page_names_a_version_without_calls(collector: CollectorProcess) -> None:
    send(collector.url, version_spans("v1", 120, {"parse": 6}, seed=1))
    wait_for_calls(collector.url, 120)
    page = httpx.get(
        f"{collector.url}/compare", params={"baseline": "v1", "candidate": "nope"}, timeout=30
    )
    assert page.status_code == 404
    assert "no calls of version &#39;nope&#39;" in page.text and "known versions" in page.text
    same = httpx.get(
        f"{collector.url}/compare", params={"baseline": "v1", "candidate": "v1"}, timeout=30
    )
    assert same.status_code == 400 and "two different versions" in same.text


def test_compare_page_does_not_show_not_enough_data_as_a_pass(
    collector: CollectorProcess,
) -> None:
    # "not enough data for a verdict" was framed in the green of a clean comparison
    send(collector.url, version_spans("v1", 1000, {"parse": 20}, seed=1))
    send(collector.url, version_spans("v2", 1000, {"parse": 21}, seed=2))
    send(collector.url, version_spans("v3", 50, {"parse": 1}, seed=3))
    wait_for_calls(collector.url, 2050)

    def verdict(candidate: str) -> tuple[str, str]:
        params = {"baseline": "v1", "candidate": candidate}
        page = httpx.get(f"{collector.url}/compare", params=params, timeout=30)
        assert page.status_code == 200
        section = page.text.split('<section class="verdict ', 1)[1]
        return section.split('"', 1)[0], section.split("<p>", 1)[1].split("</p>", 1)[0]

    assert verdict("v3") == ("warn", "not enough data for a verdict")
    assert verdict("v2")[0] == "ok"


def test_the_sparkline_holds_the_hour_the_window_starts_in(store: Store) -> None:
    """A window from half past an hour counts that hour (it overlaps the window):
    the sparkline starts with it, as the versions table beside it counts it."""
    calls = [
        Call("v1", "s", T0 + timedelta(minutes=15), True, 7),
        Call("v1", "s", T0 + timedelta(minutes=20), False, 0),
        Call("v1", "s", T0 + timedelta(hours=1, minutes=15), False, 0),
    ]
    store_calls(store, calls)
    since = T0 + timedelta(minutes=30)
    (version,) = list_versions(store, "default", since)
    points = _hourly_rates(store, "default", since)["v1"]
    assert (sum(p[1] for p in points), sum(p[2] for p in points)) == (3, 1)
    assert (version["calls"], version["failures"]) == (3, 1)
    assert _sparkline_series(points, since) == [0.5, 0.0]


def _verdict(url: str, **params: str) -> tuple[str, str]:
    """The compare page's verdict box: its class, and all it says."""
    page = httpx.get(f"{url}/compare", params=params, timeout=30)
    assert page.status_code == 200
    section = page.text.split('<section class="verdict ', 1)[1].split("</section>", 1)[0]
    return section.split('"', 1)[0], section


def test_compare_page_does_not_show_modes_that_rose_as_a_pass(
    collector: CollectorProcess,
) -> None:
    """The same failure rate, no new mode, but one mode ten times as frequent and
    the mix shifted: the box said so in words, framed in the green of a pass."""
    send(collector.url, version_spans("v1", 2000, {"parse": 40, "ratelimit": 4}, seed=1))
    send(collector.url, version_spans("v2", 2000, {"parse": 4, "ratelimit": 40}, seed=2))
    wait_for_calls(collector.url, 4000)
    kind, text = _verdict(collector.url, baseline="v1", candidate="v2")
    assert kind == "warn"
    assert "significantly more frequent, up to 10.0x" in text and "failure mix shifted" in text
    # the other way round, the parse failures rose ten times: a warning too
    assert _verdict(collector.url, baseline="v2", candidate="v1")[0] == "warn"


def test_the_novelty_tooltip_says_what_each_window_counts(collector: CollectorProcess) -> None:
    """All time, novelty counts from a version's own first call (the modes it
    brought), not from a window that has no start."""
    send(collector.url, version_spans("v1", 50, {"parse": 5}, seed=1))
    wait_for_calls(collector.url, 50)

    def title(window: str) -> str:
        page = httpx.get(f"{collector.url}/", params={"window": window}, timeout=30)
        assert page.status_code == 200
        return page.text.split(">Novelty</th>", 1)[0].rsplit('title="', 1)[1].split('"', 1)[0]

    assert "this version&#39;s first call" in title("")
    assert "hour" not in title("") and "window" not in title("")
    assert "since the start of this window" in title("7d") and "hour" not in title("7d")


@pytest.mark.parametrize("path", ["/", "/compare"])
def test_every_window_offered_or_named_is_accepted(collector: CollectorProcess, path: str) -> None:
    """The windows the drop-down offers and those a refusal names are all
    accepted, ``all`` and the empty window as all time."""
    page = httpx.get(f"{collector.url}{path}", timeout=30)
    assert page.status_code == 200
    offered = re.findall(r'<option value="([^"]*)"', page.text.split('name="window"', 1)[1])
    refused = httpx.get(f"{collector.url}{path}", params={"window": "bogus"}, timeout=30)
    assert refused.status_code == 400
    # "window must be one of 24h, 7d, 30d, all (...)"
    named = refused.json()["detail"].split("one of ", 1)[1].split(" (", 1)[0].split(", ")
    assert {"24h", "7d", "30d", "all"} <= set(offered) & set(named)
    for window in {*offered, *named, ""}:
        answer = httpx.get(f"{collector.url}{path}", params={"window": window}, timeout=30)
        assert answer.status_code == 200, (window, answer.text[:200])
    all_time = httpx.get(f"{collector.url}{path}", params={"window": "all"}, timeout=30).text
    assert '<option value="all" selected>all time</option>' in all_time


def _cells(page: str, first: str) -> list[str]:
    """The text of the numeric cells of the table row whose first cell is FIRST."""
    row = page.split(first, 1)[1].split("</tr>", 1)[0]
    cells = [c.split("</td>", 1)[0] for c in row.split('<td class="num">')[1:]]
    return [re.sub(r"<[^>]+>", "", c).strip() for c in cells]


def test_versions_show_no_spread_without_failures_and_no_novelty_for_a_rerun(
    collector: CollectorProcess,
) -> None:
    """A version without failures has no effective modes or top-3 share ("–",
    not 0.0 and 0%), and a candidate run right after its baseline, within the
    same hour, brought no new mode (novelty 0%, not 100%)."""
    rng = random.Random(5)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)

    def ago(minutes: int) -> float:
        return time.time() - (hour + timedelta(minutes=minutes)).timestamp()

    spans = [span("v1", "parse", rng=rng, ago_s=ago(10)) for _ in range(30)]
    spans += [span("v1", None, rng=rng, ago_s=ago(11)) for _ in range(170)]
    spans += [span("v2", "parse", rng=rng, ago_s=ago(30)) for _ in range(25)]
    spans += [span("v2", None, rng=rng, ago_s=ago(31)) for _ in range(175)]
    spans += [span("quiet", None, rng=rng, ago_s=ago(40)) for _ in range(200)]
    send(collector.url, spans)
    wait_for_calls(collector.url, 600)
    page = httpx.get(f"{collector.url}/", params={"window": ""}, timeout=30).text
    # calls, failures, rate, modes, effective modes, top-3, novelty, repeatability, drift
    assert _cells(page, "<b>quiet</b>")[3:7] == ["0", "–", "–", "–"]
    assert _cells(page, "<b>v1</b>")[3:7] == ["1", "1.0", "100%", "100%"]
    assert _cells(page, "<b>v2</b>")[3:7] == ["1", "1.0", "100%", "0%"]
    compared = httpx.get(
        f"{collector.url}/compare", params={"baseline": "v1", "candidate": "quiet"}, timeout=30
    )
    assert compared.status_code == 200
    assert _cells(compared.text, "<th>Effective modes</th>") == ["1.0", "–"]
    assert _cells(compared.text, "<th>Top-3 share</th>") == ["100.00%", "–"]


def test_a_daily_sparkline_keeps_the_days_without_calls() -> None:
    """Over three weeks one point per day: days without calls are gaps, so the
    points stay evenly spaced in time (as the hourly sparkline's hours)."""
    day0 = datetime(2030, 1, 1, tzinfo=UTC)
    points = [(day0 + timedelta(days=d, hours=3), 10.0, float(d % 3)) for d in (0, 1, 5, 20)]
    series = _sparkline_series(points, None)
    assert len(series) == 21
    assert series[0] == 0.0 and series[1] == 0.1 and series[5] == 0.2 and series[20] == 0.2
    assert all(v is None for i, v in enumerate(series) if i not in (0, 1, 5, 20))


def test_compare_page_shows_a_p_value_that_underflows_as_a_bound() -> None:
    result = underflowing_comparison()
    page = templates.get_template("compare.html").render(
        windows=WINDOWS,
        window="7d",
        path="/compare",
        project="default",
        names=["old", "new"],
        absent=[],
        baseline="old",
        candidate="new",
        result=result,
        error=None,
        concerns=concerns(result),
        novelty_help="",
    )
    assert "(p &lt; 1e-300)" in page
    assert "(p = 0)" not in page
    # the p (adj.) column of the modes' tables
    assert page.count('<td class="num">&lt;1e-300</td>') == 3
