"""The built-in UI in a real browser: headless Chromium driven by Playwright.

A real collector serves ``faultprint demo`` traffic; the tests load each
page, pick two versions, and check what a person would see. Screenshots go
to ``test-artifacts/ui/``. Without Chromium these tests skip (with a
message), except in CI, where they must run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, CollectorProcess
from tests.demo_store import copy_store, make_demo_store

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "ui"
BASELINE, CANDIDATE = "acme-chat-2025-06", "acme-chat-2025-09"

pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        raise RuntimeError(
            f"{CHROMIUM} is missing: CI must install the 'chromium' package (.ci/setup.sh)"
        )
    pytest.skip(
        f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def demo_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    """A real collector on loopback serving a copy of the demo store."""
    from tests.conftest import free_port

    base = tmp_path_factory.mktemp("ui")
    source = make_demo_store(base / "demo")
    collector = CollectorProcess(
        store=str(copy_store(source, base / "served")),
        port=free_port(),
        log_path=base / "collector.log",
    )
    collector.start()
    yield collector
    collector.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium under Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, demo_collector: CollectorProcess) -> Iterator[Any]:
    """A fresh page that fails the test on any request leaving the collector."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    outside: list[str] = []
    page.on(
        "request",
        lambda r: None if r.url.startswith(demo_collector.url) else outside.append(r.url),
    )
    yield page
    context.close()
    assert not outside, f"the UI fetched something from elsewhere (must work offline): {outside}"


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _expect_ok(page: Any, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, f"{url}: {response and response.status}"


def test_overview_shows_versions_metrics_sparklines_and_new_modes(
    page: Any, demo_collector: CollectorProcess
) -> None:
    _expect_ok(page, demo_collector.url + "/")
    rows = page.locator("#versions tbody tr")
    assert rows.count() == 2
    text = page.locator("#versions").inner_text()
    assert BASELINE in text and CANDIDATE in text
    # the two demo versions: ~8% in few modes against ~5% in many
    versions = httpx.get(demo_collector.url + "/api/versions", timeout=30).json()["versions"]
    for v in versions:
        row = page.locator("#versions tbody tr", has_text=v["model_version"])
        assert f"{v['failure_rate'] * 100:.2f}%" in row.inner_text()
        assert row.locator("svg.sparkline").count() == 1
    assert page.locator("svg.rates").count() == 1
    assert page.locator("#recent-modes tbody tr").count() >= 5
    _shot(page, "overview")


def test_compare_two_versions(page: Any, demo_collector: CollectorProcess) -> None:
    _expect_ok(page, demo_collector.url + "/compare")
    page.select_option("#baseline", BASELINE)
    page.select_option("#candidate", CANDIDATE)
    page.click("#pick button[type=submit]")
    page.wait_for_load_state()
    assert f"baseline={BASELINE}" in page.url and f"candidate={CANDIDATE}" in page.url
    expected = httpx.get(
        demo_collector.url + "/api/compare",
        params={"baseline": BASELINE, "candidate": CANDIDATE},
        timeout=30,
    ).json()
    assert expected["verdict"] in page.locator("#verdict").inner_text()
    metrics = page.locator("#metrics").inner_text()
    assert f"{expected['baseline']['failure_rate'] * 100:.2f}%" in metrics
    assert f"{expected['candidate']['failure_rate'] * 100:.2f}%" in metrics
    assert page.locator("svg.rates").count() == 1 and page.locator("svg.paired").count() == 1
    for key, table in (
        ("new_modes", "#new-modes"),
        ("vanished_modes", "#vanished-modes"),
        ("changed_modes", "#changed-modes"),
    ):
        assert page.locator(f"{table} tbody tr").count() == len(expected[key]), key
        for mode in expected[key]:
            assert page.locator(f"{table} a.fp", has_text=mode["fingerprint"]).count() == 1
    _shot(page, "compare")


def test_compare_rejects_the_same_version_twice(
    page: Any, demo_collector: CollectorProcess
) -> None:
    response = page.goto(f"{demo_collector.url}/compare?baseline={BASELINE}&candidate={BASELINE}")
    assert response is not None and response.status == 400
    assert "two different versions" in page.locator(".error").inner_text()


def test_fingerprint_page_from_the_overview(page: Any, demo_collector: CollectorProcess) -> None:
    _expect_ok(page, demo_collector.url + "/")
    link = page.locator("#recent-modes a.fp").first
    fp = link.inner_text().strip()
    link.click()
    page.wait_for_load_state()
    # the overview's window (7d, the default) goes along
    assert page.url.endswith(f"/fingerprint/{fp}?window=7d")
    detail = httpx.get(
        f"{demo_collector.url}/api/fingerprints/{fp}", params={"since": "7d"}, timeout=30
    ).json()
    components = page.locator("#components").inner_text()
    for key in detail["components"]:
        assert key in components
    assert page.locator("#per-version tbody tr").count() == len(detail["versions"])
    assert page.locator("#timeline svg.timeline rect[height]").count() >= 1
    exemplars = page.locator("#exemplars tbody tr")
    assert exemplars.count() == len(detail["exemplars"]) >= 1
    assert detail["exemplars"][0]["trace_id"] in page.locator("#exemplars").inner_text()
    _shot(page, "fingerprint")


def test_bad_fingerprint_is_a_clear_page_not_a_crash(
    page: Any, demo_collector: CollectorProcess
) -> None:
    response = page.goto(demo_collector.url + "/fingerprint/not-hex")
    assert response is not None and response.status == 400
    assert page.locator(".error").count() == 1
    response = page.goto(demo_collector.url + "/fingerprint/0000000000000001")
    assert response is not None and response.status == 404


_SEND = """
import sys
import faultprint

url, key, version = sys.argv[1:4]
faultprint.configure(endpoint=url, api_key=key, service="keyed-app")


@faultprint.observe(model="acme-chat", provider="acme", version=version)
def answer(i: int) -> str:
    if i % 3 == 0:
        raise ValueError("the model answered in the wrong language")
    return "ok"


for i in range(30):
    try:
        answer(i)
    except ValueError:
        pass
faultprint.flush()
faultprint.shutdown()
"""


def _send(url: str, key: str, version: str) -> None:
    """Send real SDK traffic for one project (its own process: the SDK is global)."""
    done = subprocess.run(
        [sys.executable, "-c", _SEND, url, key, version],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_ui_with_api_keys_shows_only_the_keys_project(
    browser: Any, start_collector: Callable[..., CollectorProcess]
) -> None:
    """With keys configured the UI asks for one and shows only that key's project."""
    key_a, key_b = "team-a-key-0123456789abcdef", "team-b-key-0123456789abcdef"
    collector = start_collector(env={"FAULTPRINT_API_KEYS": f"team-a:{key_a},team-b:{key_b}"})
    _send(collector.url, key_a, "alpha-version-1")
    _send(collector.url, key_b, "bravo-version-1")
    for key in (key_a, key_b):
        for _ in range(100):
            got = httpx.get(
                collector.url + "/api/versions", headers={"x-api-key": key}, timeout=30
            ).json()["versions"]
            if got and got[0]["calls"] >= 30:
                break
            time.sleep(0.2)

    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(collector.url + "/")
        assert "/ui/key" in page.url, "without a key the UI asks for one"
        assert "alpha-version-1" not in page.content()
        page.fill("input[name=key]", "not-a-key-at-all-xxxxxxxx")
        page.click("form.pick button")
        page.wait_for_load_state()
        assert "not valid" in page.locator(".error").inner_text()
        page.fill("input[name=key]", key_b)
        page.click("form.pick button")
        page.wait_for_load_state()
        html = page.content()
        assert "project <b>team-b</b>" in html
        assert "bravo-version-1" in html and "alpha-version-1" not in html
        fp = page.locator("#recent-modes a.fp").first.inner_text().strip()
        other = httpx.get(
            collector.url + "/api/fingerprints", headers={"x-api-key": key_a}, timeout=30
        ).json()["fingerprints"]
        # the same failure in another project has the same fingerprint, but its page
        # shows this project's versions only
        page.goto(f"{collector.url}/fingerprint/{fp}")
        assert "bravo-version-1" in page.content() and "alpha-version-1" not in page.content()
        assert other and other[0]["fingerprint"] == fp
        page.goto(collector.url + "/compare")
        assert page.locator("#baseline option").all_inner_texts() == ["bravo-version-1"]
        _shot(page, "keyed-project")
    finally:
        context.close()
