"""The web UI in a real browser: headless Chromium (Debian's, installed by scripts/browser.sh)
driven by Selenium, against the app served by uvicorn on a demo store in a real SQLite file
and in PostgreSQL.

Without Chromium these tests skip locally, saying how to install it, and FAIL in CI (the
environment variable CI set), where .ci/run installs it first. Screenshots of the main pages
are saved in test-artifacts/web/ (git-ignored); docs/images/ holds two of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web_server import serve
from web_support import (  # noqa: F401 - fixtures
    ACCOUNT_1,
    append_notes,
    demo_url_fixture,
    store_url_fixture,
)

from eventsource.cli.demo import app as demo_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "web"
ACCOUNT_STREAM = f"{ACCOUNT_1}:Account"
LIVE_WITHIN = 2.0  # seconds: the bound for a committed event to show in the open log

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # uvicorn's imports


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through /usr/bin/chromedriver (no download, ever)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        problem = f"{CHROMIUM} or {CHROMEDRIVER} is missing: run scripts/browser.sh"
        if os.environ.get("CI"):
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver: Any, name: str, store_url: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    backend = "sqlite" if store_url.startswith("sqlite") else "postgresql"
    driver.save_screenshot(str(ARTIFACTS / f"{name}-{backend}.png"))


def _wait(driver: Any, seconds: float) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.05)


def _by() -> Any:
    from selenium.webdriver.common.by import By

    return By


def test_search_a_stream_open_it_and_an_event(browser: Any, demo_url: str) -> None:
    by = _by()
    with serve(demo_url) as base:
        browser.get(f"{base}/")
        _shot(browser, "dashboard", demo_url)
        assert "AccountBalances" in browser.find_element(by.TAG_NAME, "main").text
        browser.get(f"{base}/streams")
        browser.find_element(by.NAME, "prefix").send_keys("a1000000")
        browser.find_element(by.CSS_SELECTOR, "form.search button").click()
        _wait(browser, 10).until(lambda d: "prefix=a1000000" in d.current_url)
        listed = [a.text for a in browser.find_elements(by.CSS_SELECTOR, "#streams td a")
                  if a.text.endswith(":Account")]
        assert listed[0] == ACCOUNT_STREAM
        assert len(listed) == 3
        assert not any(":Order" in a.text for a in browser.find_elements(by.TAG_NAME, "a"))
        _shot(browser, "streams", demo_url)
        browser.find_element(by.LINK_TEXT, ACCOUNT_STREAM).click()
        _wait(browser, 10).until(lambda d: "Stream" in d.find_element(by.TAG_NAME, "h1").text)
        headings = [h.text for h in browser.find_elements(by.CSS_SELECTOR, "article.event h3")]
        assert [h.split()[:2] for h in headings] == [
            ["v1", "AccountOpened"], ["v2", "MoneyDeposited"],
            ["v3", "MoneyDeposited"], ["v4", "MoneyWithdrawn"],
        ]
        assert '"owner": "Ada"' in browser.find_element(by.CSS_SELECTOR, "pre.payload").text
        _shot(browser, "stream", demo_url)
        browser.find_element(by.PARTIAL_LINK_TEXT, "v2 MoneyDeposited").click()
        _wait(browser, 10).until(lambda d: d.find_elements(by.ID, "stored-type"))
        assert browser.find_element(by.ID, "stored-type").text == "MoneyDeposited"
        assert browser.find_element(by.ID, "stored-version").text == "1"
        _shot(browser, "event", demo_url)


def test_the_open_global_log_shows_new_events_live(browser: Any, demo_url: str) -> None:
    by = _by()
    with serve(demo_url) as base:
        browser.get(f"{base}/log")
        _wait(browser, 10).until(
            lambda d: "connected" in d.find_element(by.ID, "live-status").get_attribute("class")
        )
        attack = "<script>document.title='pwned'</script>"
        append_notes(demo_url, [f"live {n}" for n in range(1, 5)] + [attack])
        _wait(browser, LIVE_WITHIN).until(
            lambda d: len(d.find_elements(by.CSS_SELECTOR, "#log-rows tr.new")) == 5
        )
        rows = browser.find_elements(by.CSS_SELECTOR, "#log-rows tr.new")
        positions = [row.get_attribute("data-position") for row in rows]
        assert positions == ["16", "15", "14", "13", "12"]  # newest on top
        assert attack in rows[0].text  # shown as text, not run
        assert browser.title != "pwned"
        _shot(browser, "log", demo_url)


def test_a_script_payload_renders_as_text(browser: Any, demo_url: str) -> None:
    by = _by()
    attack = "<script>document.title='pwned'</script><b>bold?</b>"
    stream = append_notes(demo_url, [attack])
    with serve(demo_url) as base:
        for path in (f"/streams/{stream}:Note", "/events/12", "/log", "/"):
            browser.get(f"{base}{path}")
            assert browser.title != "pwned"
            assert attack in browser.find_element(by.TAG_NAME, "main").text
            assert not browser.find_elements(by.CSS_SELECTOR, "main b")


def test_dlq_retry_is_refused_read_only_and_works_with_allow_writes(
    browser: Any, demo_url: str
) -> None:
    by = _by()
    with serve(demo_url, app=demo_app()) as base:
        browser.get(f"{base}/dlq/1")
        assert "MoneyWithdrawn" in browser.find_element(by.TAG_NAME, "main").text
        assert not browser.find_elements(by.ID, "retry")  # no button when read-only
        browser.get(f"{base}/dlq/1/retry")  # the confirmation page, asked for directly: 403
        assert "read-only" in browser.find_element(by.ID, "error").text
    with serve(demo_url, app=demo_app(), allow_writes=True) as base:
        browser.get(f"{base}/dlq/1")
        _shot(browser, "dlq-entry", demo_url)
        browser.find_element(by.ID, "retry").click()
        _wait(browser, 10).until(lambda d: d.find_elements(by.ID, "plan"))
        assert "Hand dead letter 1" in browser.find_element(by.ID, "plan").text
        _shot(browser, "confirm", demo_url)
        browser.find_element(by.ID, "confirm").click()
        _wait(browser, 10).until(lambda d: d.find_elements(by.ID, "outcome"))
        assert '"resolved": [\n    1\n  ]' in browser.find_element(by.ID, "outcome").text
        browser.get(f"{base}/dlq/1")
        assert "resolved" in browser.find_element(by.TAG_NAME, "h1").text
        assert not browser.find_elements(by.ID, "retry")
