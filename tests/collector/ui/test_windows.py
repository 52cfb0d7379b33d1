"""The UI's pages against one store with calls spread over two weeks: every page
shows the window asked for, links keep it, and bad parameters get a page."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from html import unescape

import httpx
import pytest

from tests.collector.analysis.otlp_calls import send, span, wait_for_calls
from tests.conftest import CollectorProcess, free_port

HTML = {"accept": "text/html"}
DAY = 86_400.0
#: a version name as long as the collector keeps (248 characters)
LONG = "long-version-" + "x" * 235


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    """A collector holding:

    - mode "parse" at ``a.summarise`` on v1: 5 failures three days ago, 2 in the last hour;
    - mode "parse" at ``b.summarise`` on v2 (same error, other call site), recent;
    - ``old-v0``: calls ten days ago only;
    - mode "timeout" at ``shop.spike``: first seen ten days ago, 40 failures in
      the last hour, then 11 other modes first seen after it (so it is not one
      of the 10 most recently first seen);
    - a version with a 248-character name.
    """
    base = tmp_path_factory.mktemp("ui-windows")
    collector = CollectorProcess(
        store=str(base / "store"), port=free_port(), log_path=base / "collector.log"
    )
    collector.start()
    rng = random.Random(11)
    spans = [span("v1", "parse", rng=rng, call_site="a.summarise", ago_s=3 * DAY) for _ in range(5)]
    spans += [span("v1", "parse", rng=rng, call_site="a.summarise", ago_s=1800) for _ in range(2)]
    spans += [span("v1", None, rng=rng, call_site="a.summarise", ago_s=1800) for _ in range(300)]
    spans += [span("v2", "parse", rng=rng, call_site="b.summarise", ago_s=1800) for _ in range(20)]
    spans += [span("v2", None, rng=rng, call_site="b.summarise", ago_s=1800) for _ in range(300)]
    # both versions call both sites, so the comparison judges the modes there
    for version, site, n in (("v1", "b.summarise", 600), ("v2", "a.summarise", 100)):
        spans += [span(version, None, rng=rng, call_site=site, ago_s=1800) for _ in range(n)]
    spans += [span("old-v0", None, rng=rng, ago_s=10 * DAY) for _ in range(10)]
    spans += [span("old-v0", "timeout", rng=rng, call_site="shop.spike", ago_s=10 * DAY)]
    spans += [span("v2", "timeout", rng=rng, call_site="shop.spike", ago_s=1200) for _ in range(40)]
    spans += [
        span("v2", "schema", rng=rng, call_site=f"site{i}.run", ago_s=600 - i) for i in range(11)
    ]
    spans += [span(LONG, "parse", rng=rng, ago_s=900) for _ in range(3)]
    send(collector.url, spans)
    wait_for_calls(collector.url, len(spans))
    yield collector
    collector.stop()


def _get(served: CollectorProcess, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{served.url}{path}", params=params, headers=HTML, timeout=30)


def _fp(served: CollectorProcess, call_site: str, category: str | None = None) -> str:
    params = {"call_site": call_site, **({"category": category} if category else {})}
    rows = httpx.get(f"{served.url}/api/fingerprints", params=params, timeout=30).json()
    return str(rows["fingerprints"][0]["fingerprint"])


def _table(page: str, table_id: str) -> str:
    return page.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]


def test_the_fingerprint_page_shows_the_window_asked_for(served: CollectorProcess) -> None:
    fp = _fp(served, "a.summarise")
    day = _get(served, f"/fingerprint/{fp}", window="24h")
    every = _get(served, f"/fingerprint/{fp}", window="all")
    assert day.status_code == every.status_code == 200
    lead = re.sub(r"<[^>]+>", "", day.text.split('id="window-lead">', 1)[1].split("</p>")[0])
    assert lead.startswith("2 failures last 24 hours")
    assert "7 failures all time" in re.sub(r"<[^>]+>", "", every.text)
    assert _table(day.text, "exemplars").count("<tr>\n    <td class") == 2
    assert _table(every.text, "exemplars").count("<tr>\n    <td class") == 7
    # the timeline covers the window: an hour's bars, not three days'
    assert day.text.count("<title>v1 ") == 1 and every.text.count("<title>v1 ") == 2
    assert '<option value="24h" selected>' in day.text
    # the same check as the other pages: a 400 naming the windows there are
    bogus = _get(served, f"/fingerprint/{fp}", window="bogus")
    assert bogus.status_code == 400 and "window must be one of 24h, 7d, 30d, all" in bogus.text


def _hrefs(page: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="(/[^"]*)"', page) if not h.startswith("/ui/")]


def test_links_between_pages_keep_the_window(served: CollectorProcess) -> None:
    overview = _get(served, "/", window="24h").text
    links = _hrefs(overview)
    assert any(h.startswith("/compare") for h in links)
    assert any(h.startswith("/fingerprint/") for h in links)
    assert all(h.endswith("?window=24h") for h in links), links
    compared = _get(served, "/compare", baseline="v1", candidate="v2", window="30d").text
    links = _hrefs(compared)
    assert any(h.startswith("/fingerprint/") for h in links)
    assert all(h.endswith("?window=30d") for h in links), links
    fp = _fp(served, "a.summarise")
    links = _hrefs(_get(served, f"/fingerprint/{fp}", window="all").text)
    assert {"/?window=all", "/compare?window=all"} <= set(links)


def test_every_page_opens_on_the_same_window(served: CollectorProcess) -> None:
    fp = _fp(served, "a.summarise")
    for path in ("/", "/compare", f"/fingerprint/{fp}"):
        assert '<option value="7d" selected>' in _get(served, path).text, path


def test_the_overview_lists_the_windows_top_modes(served: CollectorProcess) -> None:
    """The spike (first seen ten days ago) is not among the 10 newest modes, but
    it is the window's top mode, as ``/api/incidents`` says."""
    spike = _fp(served, "shop.spike")
    page = _get(served, "/", window="24h").text
    assert spike not in _table(page, "recent-modes")
    top = _table(page, "top-modes")
    incidents = httpx.get(
        f"{served.url}/api/incidents", params={"since": "24h", "limit": 15}, timeout=30
    ).json()["incidents"]
    assert incidents[0]["fingerprint"] == spike
    shown = re.findall(r'<a class="fp" href="/fingerprint/([0-9a-f]{16})\?window=24h"', top)
    assert shown == [i["fingerprint"] for i in incidents]
    row = top.split(spike, 2)[2].split("</tr>", 1)[0]
    assert "40" in row and "shop.spike" in row and "old-v0" not in row
    assert "First seen (UTC)" in top and "Last seen (UTC)" in top


def test_the_compare_form_keeps_a_version_without_calls_in_the_window(
    served: CollectorProcess,
) -> None:
    page = _get(served, "/compare", baseline="old-v0", candidate="v1", window="7d")
    assert page.status_code == 404
    baseline = page.text.split('id="baseline"', 1)[1].split("</select>", 1)[0]
    selected = re.findall(r'<option value="([^"]*)" selected>([^<]*)', baseline)
    assert selected == [("old-v0", "old-v0 (no calls in this window)")]


@pytest.mark.parametrize(
    "path, params, name",
    [
        ("/", {"window": "a" * 17}, "window"),
        ("/compare", {"baseline": "x" * 257, "candidate": "v1"}, "baseline"),
        ("/compare", {"baseline": "v1", "candidate": "v2", "window": "a" * 17}, "window"),
        ("/fingerprint/0000000000000001", {"window": "a" * 17}, "window"),
    ],
)
def test_over_long_page_parameters_get_the_400_page(
    served: CollectorProcess, path: str, params: dict[str, str], name: str
) -> None:
    page = _get(served, path, **params)
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert f'<p class="error" role="alert">{name}: ' in page.text


def test_the_api_keeps_its_json_for_over_long_parameters(served: CollectorProcess) -> None:
    answer = httpx.get(f"{served.url}/api/versions", params={"since": "a" * 65}, timeout=30)
    assert answer.status_code == 422 and answer.json()["detail"] == "invalid request"


def test_long_names_are_cut_with_their_full_name_in_a_title(served: CollectorProcess) -> None:
    page = _get(served, "/", window="24h").text
    versions = _table(page, "versions")
    assert f'<span class="cut" title="{LONG}">{LONG[:31]}…</span>' in versions
    assert f">{LONG}<" not in page


def test_call_sites_are_shown_whole(served: CollectorProcess) -> None:
    """``a.summarise`` and ``b.summarise`` are two call sites, not one."""
    page = _get(served, "/", window="24h").text
    assert "<td>a.summarise</td>" in _table(page, "top-modes")
    assert "<td>b.summarise</td>" in _table(page, "top-modes")
    compared = _get(served, "/compare", baseline="v1", candidate="v2", window="24h").text
    assert "<td>b.summarise</td>" in compared and "a.summarise ·" in compared


def test_overview_times_say_utc_and_the_template_shows_once(served: CollectorProcess) -> None:
    page = _get(served, "/", window="24h").text
    assert "<th>First seen (UTC)</th>" in _table(page, "recent-modes")
    fp = _fp(served, "a.summarise")
    detail = _get(served, f"/fingerprint/{fp}").text
    assert _table(detail, "components").count("<th>template</th>") == 1


def test_the_favicon_is_no_error(served: CollectorProcess) -> None:
    assert httpx.get(f"{served.url}/favicon.ico", timeout=30).status_code < 400
    icon = re.search(r'<link rel="icon" href="([^"]+)"', _get(served, "/").text)
    assert icon is not None
    assert httpx.get(f"{served.url}{icon.group(1)}", timeout=30).status_code == 200


KEY = "team-a-key-0123456789abcdef"


@pytest.fixture
def keyed(start_collector: Callable[..., CollectorProcess]) -> CollectorProcess:
    return start_collector(env={"FAULTPRINT_API_KEYS": f"team-a:{KEY}"})


def _post_key(url: str, body: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{url}/ui/key", data=body, headers=HTML, timeout=30)


def test_a_deep_link_comes_back_after_the_key(keyed: CollectorProcess) -> None:
    wanted = "/compare?baseline=a&candidate=b&window=24h"
    asked = httpx.get(keyed.url + wanted, headers=HTML, timeout=30)
    assert asked.status_code == 303
    form = httpx.get(keyed.url + asked.headers["location"], headers=HTML, timeout=30)
    assert form.status_code == 401
    assert "This collector requires an API key." in form.text
    hidden = re.search(r'<input type="hidden" name="next" value="([^"]*)">', form.text)
    assert hidden is not None and unescape(hidden.group(1)) == wanted
    given = _post_key(keyed.url, {"key": KEY, "next": unescape(hidden.group(1))})
    assert given.status_code == 303 and given.headers["location"] == wanted


@pytest.mark.parametrize(
    "target",
    ["//evil.example/x", "https://evil.example/", "/\\evil.example", "evil", "/\nx", ""],
)
def test_the_key_form_goes_nowhere_but_this_site(keyed: CollectorProcess, target: str) -> None:
    given = _post_key(keyed.url, {"key": KEY, "next": target})
    assert given.status_code == 303 and given.headers["location"] == "/"


def test_the_key_page_says_only_its_own_messages(keyed: CollectorProcess) -> None:
    spoof = "Your key expired. Mail it to it-support@evil.example"
    page = httpx.get(f"{keyed.url}/ui/key", params={"message": spoof, "code": spoof[:16]})
    assert page.status_code == 401
    assert "evil.example" not in page.text and 'class="error"' not in page.text
    page = httpx.get(f"{keyed.url}/ui/key", params={"code": "invalid"})
    assert "That API key is not valid here." in page.text


def test_an_open_collector_needs_no_key(collector: CollectorProcess) -> None:
    page = httpx.get(f"{collector.url}/ui/key", headers=HTML, timeout=30)
    assert page.status_code == 200
    assert "No API key needed" in page.text and 'href="/"' in page.text
    assert "API key needed</h1>" not in page.text.replace("No API key needed</h1>", "")
