"""The dashboard in a real headless Chromium, against opsbot served over HTTP with seeded data.

Each test reads the browser's console log: a script error, a CSP violation or
a failed sub-resource shows there, and none may appear. Screenshots of every
page are saved (see the ``artifacts`` fixture for where).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from opsbot.db.models import Incident
from tests.ui.conftest import Served
from tests.ui.seed import HOSTILE, NONPROD, PROD, READER_TOKEN

# Not errors of the page: Chromium logs the status of a document it was sent to on purpose.
EXPECTED_STATUS = ("status of 400", "status of 404")


def console_errors(browser: Any, allow: tuple[str, ...] = ()) -> list[str]:
    """Return the console entries of warning level or worse since the last call."""
    entries = browser.get_log("browser")
    return [
        e["message"]
        for e in entries
        if e["level"] in ("SEVERE", "WARNING") and not any(a in e["message"] for a in allow)
    ]


def follow(browser: Any, element: Any) -> None:
    """Click a link or button and wait until the page it leads to has replaced this one."""
    page = browser.find_element(By.TAG_NAME, "html")
    try:
        element.click()
    except WebDriverException as exc:
        # the navigation can win the race against chromedriver's own check after the click
        if "does not belong to the document" not in str(exc):
            raise
    WebDriverWait(browser, 10).until(lambda _: replaced(page))


def replaced(page: Any) -> bool:
    """Return whether the page's root element is gone: navigation finished replacing it."""
    try:
        page.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        # chromedriver reports a node of the document being replaced this way, not as stale
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False


def shoot(browser: Any, artifacts: Path, name: str) -> None:
    path = artifacts / f"{name}.png"
    assert browser.save_screenshot(str(path)), path
    print(f"screenshot: {path}")


def rows(browser: Any) -> list[dict[str, str]]:
    found = []
    for tr in browser.find_elements(By.CSS_SELECTOR, "#incidents tbody tr"):
        cell = {c: tr.find_element(By.CSS_SELECTOR, f"td.{c}").text for c in
                ("title", "environment", "account", "source", "status")}  # fmt: skip
        cell["id"] = tr.get_attribute("data-id") or ""
        found.append(cell)
    return found


def expected(served: Served, **where: str) -> list[int]:
    """Return the ids of the seeded incidents matching column values, newest first."""
    with served.rt.sessions() as session:
        found = session.query(Incident).filter_by(**where).order_by(Incident.id.desc()).all()
        return [row.id for row in found]


@pytest.fixture(scope="module")
def signed_in(browser: Any, served: Served, artifacts: Path) -> Any:
    """Sign in once through the login form with a read-only named token."""
    browser.get(f"{served.url}/ui/silences")
    assert urlsplit(browser.current_url).path == "/ui/login"
    shoot(browser, artifacts, "login")
    browser.find_element(By.ID, "token").send_keys("not-the-token")
    follow(browser, browser.find_element(By.ID, "sign-in"))
    assert browser.find_element(By.ID, "login-error").text == "That token is not valid."
    assert browser.get_cookies() == []
    browser.find_element(By.ID, "token").send_keys(READER_TOKEN)
    follow(browser, browser.find_element(By.ID, "sign-in"))
    # back where the visit began, signed in as the token's name
    assert urlsplit(browser.current_url).path == "/ui/silences"
    assert browser.find_element(By.ID, "reader").text == "dashboard"
    [cookie] = browser.get_cookies()
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["secure"], cookie["path"]) == (
        True,
        "Strict",
        False,  # plain http here; https (or X-Forwarded-Proto: https) makes it Secure
        "/ui",
    )
    assert READER_TOKEN not in cookie["value"]
    assert console_errors(browser, allow=("status of 401",)) == []
    return browser


def test_incidents_render_newest_first_and_escaped(
    signed_in: Any, served: Served, artifacts: Path
) -> None:
    browser = signed_in
    browser.get(f"{served.url}/ui")
    found = rows(browser)
    assert [int(r["id"]) for r in found] == expected(served)
    assert len(found) == len(served.seeded.incidents)
    hostile = next(r for r in found if int(r["id"]) == served.seeded.incidents["hostile"])
    assert HOSTILE in hostile["title"]  # shown as text, not run: no alert, no console error
    assert browser.find_elements(By.CSS_SELECTOR, "#incidents script") == []
    shoot(browser, artifacts, "incidents")
    assert console_errors(browser) == []


def test_filters_show_only_matching_incidents(signed_in: Any, served: Served) -> None:
    browser = signed_in
    cases: list[tuple[str, str, dict[str, str]]] = [
        ("environment", "nonprod", {"environment": "nonprod"}),
        ("status", "resolved", {"status": "resolved"}),
        ("source", "aws.guardduty", {"source": "aws.guardduty"}),
        ("account", f"prod-web ({PROD})", {"account_id": PROD}),
        ("priority", "P3", {"priority": "P3"}),
    ]
    for name, visible, where in cases:
        browser.get(f"{served.url}/ui")
        Select(browser.find_element(By.ID, f"filter-{name}")).select_by_visible_text(visible)
        follow(browser, browser.find_element(By.ID, "apply"))
        ids = [int(r["id"]) for r in rows(browser)]
        want = expected(served, **where)
        assert want and ids == want, (name, visible)
        # the form shows the filter it applied
        chosen = Select(browser.find_element(By.ID, f"filter-{name}")).first_selected_option
        assert chosen.text == visible
    # two filters together, one of which matches nothing here: the empty state
    browser.get(f"{served.url}/ui?environment=sandbox&account={NONPROD}")
    assert rows(browser) == []
    assert "No incidents match these filters." in browser.find_element(By.ID, "empty").text
    assert console_errors(browser) == []


def test_paging_walks_every_incident_once_and_back(
    signed_in: Any, served: Served, artifacts: Path
) -> None:
    browser = signed_in
    browser.get(f"{served.url}/ui?limit=3&environment=nonprod")
    pages = [[int(r["id"]) for r in rows(browser)]]
    assert browser.find_elements(By.ID, "page-newer") == []
    while browser.find_elements(By.ID, "page-older"):
        follow(browser, browser.find_element(By.ID, "page-older"))
        pages.append([int(r["id"]) for r in rows(browser)])
    walked = [i for page in pages for i in page]
    assert walked == expected(served, environment="nonprod")
    assert [len(p) for p in pages] == [3, 3, 1]  # 7 nonprod incidents
    query = parse_qs(urlsplit(browser.current_url).query)
    assert query["environment"] == ["nonprod"] and query["limit"] == ["3"]
    shoot(browser, artifacts, "incidents-last-page")
    follow(browser, browser.find_element(By.ID, "page-newer"))
    assert [int(r["id"]) for r in rows(browser)] == pages[-2]
    follow(browser, browser.find_element(By.ID, "page-first"))
    assert [int(r["id"]) for r in rows(browser)] == pages[0]
    assert console_errors(browser) == []


def test_incident_page_shows_its_timeline_and_links(
    signed_in: Any, served: Served, artifacts: Path
) -> None:
    browser = signed_in
    disk = served.seeded.incidents["disk"]
    browser.get(f"{served.url}/ui")
    follow(browser, browser.find_element(By.CSS_SELECTOR, f"tr[data-id='{disk}'] td.title a"))
    assert urlsplit(browser.current_url).path == f"/ui/incidents/{disk}"
    assert "Disk-Full" in browser.find_element(By.ID, "incident-title").text
    events = browser.find_elements(By.CSS_SELECTOR, "#timeline li")
    kinds = [e.get_attribute("class") for e in events]
    assert kinds == ["event run", "event audit", "event alert"]
    assert "restart-instance: awaiting approval" in events[0].text
    assert "incident.opened" in events[1].text and "alert firing" in events[2].text
    run = browser.find_element(By.ID, f"run-{served.seeded.run_id}")
    assert "awaiting approval" in run.text
    console = browser.find_element(By.ID, "console-link").get_attribute("href") or ""
    assert console.startswith("https://us-east-1.console.aws.amazon.com/cloudwatch/")
    shoot(browser, artifacts, "incident")
    # acknowledged by an operator: the audit entry is on the timeline
    browser.get(f"{served.url}/ui/incidents/{served.seeded.incidents['cpu']}")
    assert "acknowledged by U0ANA" in browser.find_element(By.ID, "incident-status").text
    assert "U0ANA" in browser.find_element(By.ID, "timeline").text
    # the hostile title is text on its own page too
    browser.get(f"{served.url}/ui/incidents/{served.seeded.incidents['hostile']}")
    assert HOSTILE in browser.find_element(By.ID, "incident-title").text
    assert console_errors(browser) == []


def test_silences_runs_windows_and_dead_letters_render(
    signed_in: Any, served: Served, artifacts: Path
) -> None:
    browser = signed_in
    browser.get(f"{served.url}/ui/silences")
    [stored] = browser.find_elements(By.CSS_SELECTOR, "#silences tbody tr")
    assert "active" in stored.text and "maintenance" in stored.text and "U0ANA" in stored.text
    assert "lab alarms" in browser.find_element(By.ID, "configured-silences").text
    shoot(browser, artifacts, "silences")

    follow(browser, browser.find_element(By.LINK_TEXT, "Runbook runs"))
    run = browser.find_element(By.ID, f"run-{served.seeded.run_id}")
    assert "restart-instance" in run.text and "awaiting approval" in run.text
    shoot(browser, artifacts, "runs")

    follow(browser, browser.find_element(By.LINK_TEXT, "Patch windows"))
    window = browser.find_element(By.ID, "window-1")
    starts = [li.text for li in window.find_elements(By.CSS_SELECTOR, ".next-runs li .utc")]
    # Sundays 02:00 in Paris (CET, UTC+1) after the seed's clock (Sunday 29 Nov 2026, 08:00 UTC)
    assert starts == [
        "2026-12-06 01:00:00 UTC",
        "2026-12-13 01:00:00 UTC",
        "2026-12-20 01:00:00 UTC",
    ]
    assert served.clock.now > datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    assert "(Sun 2026-12-06 02:00 CET)" in window.text
    assert "web-monthly" in window.text and "Install for 3h · notice 1h before" in window.text
    shoot(browser, artifacts, "patch-windows")

    follow(browser, browser.find_element(By.LINK_TEXT, "Dead letters"))
    [dead] = browser.find_elements(By.CSS_SELECTOR, "#dead tbody tr")
    assert "Field 'components' is required" in dead.text and "jira" in dead.text
    follow(browser, dead.find_element(By.LINK_TEXT, str(served.seeded.incidents["disk"])))
    assert urlsplit(browser.current_url).path == f"/ui/incidents/{served.seeded.incidents['disk']}"
    assert console_errors(browser) == []


def test_bad_filters_and_unknown_ids_are_pages_not_failures(
    signed_in: Any, served: Served, artifacts: Path
) -> None:
    browser = signed_in
    browser.get(f"{served.url}/ui?priority=P9")
    error = browser.find_element(By.ID, "error")
    assert error.get_attribute("data-status") == "400"
    assert "priority must be one of P1, P2, P3, P4, P5" in error.text
    shoot(browser, artifacts, "bad-filter")
    browser.get(f"{served.url}/ui/incidents/987654")
    error = browser.find_element(By.ID, "error")
    assert error.get_attribute("data-status") == "404" and "no incident 987654" in error.text
    assert console_errors(browser, allow=EXPECTED_STATUS) == []


def test_a_link_from_another_site_lands_on_the_incident_signed_in(
    signed_in: Any, served: Served
) -> None:
    """SameSite=Strict holds the cookie back on a cross-site click; the bounce page brings it."""
    browser = signed_in
    target = f"{served.url}/ui/incidents/{served.seeded.incidents['lab']}"
    browser.get(f"data:text/html,<a id='go' href='{target}'>ticket link</a>")
    follow(browser, browser.find_element(By.ID, "go"))
    WebDriverWait(browser, 10).until(expected_conditions.url_to_be(target))  # the meta refresh
    title = WebDriverWait(browser, 10).until(
        expected_conditions.presence_of_element_located((By.ID, "incident-title"))
    )
    assert "Lab-Latency" in title.text
    assert console_errors(browser) == []


def test_signing_out_ends_the_session(signed_in: Any, served: Served) -> None:
    browser = signed_in
    browser.get(f"{served.url}/ui/runs")
    follow(browser, browser.find_element(By.ID, "logout"))
    assert urlsplit(browser.current_url).path == "/ui/login"
    assert browser.get_cookies() == []
    browser.get(f"{served.url}/ui/outbox")
    assert urlsplit(browser.current_url).path == "/ui/login"
    assert console_errors(browser) == []
