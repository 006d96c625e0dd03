"""The dashboard's pages over the app's test client: content, empty states, bad input, headers."""

from __future__ import annotations

import pytest

from opsbot.db import store
from tests.ui.seed import HOSTILE, NONPROD, READER_TOKEN, seed
from tests.ui.test_access import CSP, sign_in

PAGES = ("/ui", "/ui/silences", "/ui/runs", "/ui/patch-windows", "/ui/outbox")


@pytest.fixture
def reader(ui_app):
    client = ui_app.test_client()
    sign_in(client)
    return client


@pytest.fixture
def seeded(ui_app, reader, signer, clock):
    return seed(ui_app.extensions["opsbot"], ui_app.test_client(), signer, clock)


def text(reply) -> str:
    return reply.get_data(as_text=True)


def test_every_page_is_html_with_a_strict_policy_and_not_cached(reader, seeded) -> None:
    for path in (*PAGES, f"/ui/incidents/{seeded.incidents['cpu']}", "/ui/login"):
        reply = reader.get(path)
        assert reply.status_code == 200, path
        assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
        assert reply.headers["Content-Security-Policy"] == CSP
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["X-Frame-Options"] == "DENY"
        assert reply.headers["Cache-Control"] == "no-store"
        assert "<script" not in text(reply).replace("&lt;script", "")
    with reader.get("/ui/static/ui.css") as static:  # a file response: closed when read
        assert static.status_code == 200 and static.headers["Content-Security-Policy"] == CSP
        assert "no-store" not in static.headers.get("Cache-Control", "")


def test_the_stylesheet_is_public_the_pages_are_not(ui_app) -> None:
    client = ui_app.test_client()
    with client.get("/ui/static/ui.css") as static:
        assert static.status_code == 200 and b"font" in static.get_data()
    assert client.get("/ui/login").status_code == 200
    assert client.get("/ui/outbox").status_code == 303


def test_untrusted_text_is_escaped_everywhere(reader, seeded) -> None:
    listing = text(reader.get("/ui"))
    page = text(reader.get(f"/ui/incidents/{seeded.incidents['hostile']}"))
    for body in (listing, page):
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in body
        assert HOSTILE not in body


def test_a_console_link_that_is_not_http_is_not_a_link(ui_app, reader, seeded) -> None:
    rt = ui_app.extensions["opsbot"]
    with rt.sessions() as session, session.begin():
        row = store.get_incident(session, seeded.incidents["cpu"])
        row.console_url = "javascript:alert(1)"
    body = text(reader.get(f"/ui/incidents/{seeded.incidents['cpu']}"))
    assert "javascript:" not in body and 'id="console-link"' not in body


def test_ticket_and_card_links_on_the_incident_page(ui_settings, make_app, signer, clock) -> None:
    settings = ui_settings.model_copy(update={"jira_url": "https://jira.example.com"})
    app = make_app(settings)
    client = app.test_client()
    sign_in(client)
    seeded = seed(app.extensions["opsbot"], app.test_client(), signer, clock)
    rt = app.extensions["opsbot"]
    with rt.sessions() as session, session.begin():
        row = store.get_incident(session, seeded.incidents["cpu"])
        row.jira_key, row.slack_channel, row.slack_ts = "OPS-7", "C0OPS", "1700000000.000100"
    body = text(client.get(f"/ui/incidents/{seeded.incidents['cpu']}"))
    assert '<a id="jira-link" href="https://jira.example.com/browse/OPS-7">OPS-7</a>' in body
    assert 'href="https://slack.com/archives/C0OPS/p1700000000000100"' in body


def test_empty_states_say_so(reader, config_path) -> None:
    for path, words in (
        ("/ui", "No incidents."),
        ("/ui/silences", "No silences have been made."),
        ("/ui/runs", "No runbook has been run yet."),
        ("/ui/outbox", "No dead-lettered calls"),
    ):
        reply = reader.get(path)
        assert reply.status_code == 200 and words in text(reply), path
    assert "No incidents match these filters." in text(reader.get("/ui?status=resolved"))


def test_no_patch_windows_is_an_empty_state(settings, make_app, config_path) -> None:
    config_path.write_text("")
    client = make_app(settings).test_client()  # no token: loopback reads
    assert "No patch windows are configured" in text(client.get("/ui/patch-windows"))


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("status=bogus", "status must be one of"),
        ("priority=P9", "priority must be one of P1, P2, P3, P4, P5"),
        ("environment=moon", "environment must be one of"),
        ("account=bad%20account", "account is not a value"),
        ("account=" + "1" * 65, "account is not a value"),
        ("source=%3Cx%3E", "source is not a value"),
        ("source=" + "a" * 129, "source is not a value"),
        ("limit=0", "limit must be a whole number from 1 to 200"),
        ("limit=201", "limit must be a whole number from 1 to 200"),
        ("limit=%EF%BC%91", "limit must be"),
        ("cursor=%%%", "cursor is not one this dashboard made"),
        ("cursor=aTotMQ", "cursor is not one this dashboard made"),  # "i:-1"
        ("before=aTo5MjIzMzcyMDM2ODU0Nzc1ODA4", "before is not one"),  # 2**63
        ("cursor=aTo1&before=aTo1", "not both"),
    ],
)
def test_bad_filters_and_pages_are_a_400_page(reader, query, words) -> None:
    reply = reader.get(f"/ui?{query}")
    assert reply.status_code == 400, query
    assert reply.headers["Content-Type"].startswith("text/html")
    assert words in text(reply)


@pytest.mark.parametrize(
    "path", ["/ui/runs?limit=0", "/ui/outbox?cursor=x", "/ui/silences?before=%"]
)
def test_the_other_lists_refuse_bad_pages_too(reader, path) -> None:
    assert reader.get(path).status_code == 400


def test_limits_at_their_bounds_and_long_values_within_them_are_served(reader) -> None:
    for query in ("limit=1", "limit=200", "account=" + "1" * 64, "source=" + "a" * 128):
        assert reader.get(f"/ui?{query}").status_code == 200, query


@pytest.mark.parametrize(
    "path",
    ["/ui/incidents/424242", "/ui/incidents/abc", "/ui/incidents/9223372036854775808",
     "/ui/incidents/%EF%BC%91", "/ui/no-such-page"],
)  # fmt: skip
def test_unknown_ids_and_pages_are_a_404_page(reader, path) -> None:
    reply = reader.get(path)
    assert reply.status_code == 404 and reply.headers["Content-Type"].startswith("text/html")
    assert "404 · Not found" in text(reply)


def test_an_account_filter_takes_a_name_or_an_id(reader, seeded) -> None:
    by_name = text(reader.get("/ui?account=stage-web"))
    by_id = text(reader.get(f"/ui?account={NONPROD}"))
    assert by_name.count('class="incident"') == by_id.count('class="incident"') == 2


def test_pages_before_and_after_are_disjoint_and_in_order(reader, ui_app, signer, clock) -> None:
    seeded = seed(ui_app.extensions["opsbot"], ui_app.test_client(), signer, clock, extra_alarms=3)
    ids = sorted(seeded.incidents.values(), reverse=True)
    first = reader.get("/ui?limit=4")
    assert 'id="page-newer"' not in text(first)
    cursor = store.encode_cursor(ids[3])
    second = text(reader.get(f"/ui?limit=4&cursor={cursor}"))
    shown = [i for i in ids if f'data-id="{i}"' in second]
    assert shown == ids[4:8]
    back = text(reader.get(f"/ui?limit=4&before={store.encode_cursor(ids[4])}"))
    assert [i for i in ids if f'data-id="{i}"' in back] == ids[:4]


def test_a_bearer_token_reads_without_a_session(ui_app) -> None:
    client = ui_app.test_client()
    reply = client.get("/ui/outbox", headers={"Authorization": f"Bearer {READER_TOKEN}"})
    assert reply.status_code == 200 and "Set-Cookie" not in reply.headers
    wrong = client.get("/ui/outbox", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["Content-Type"].startswith("text/html")
