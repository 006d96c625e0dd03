"""Who may read /ui, and how: tokens (the API's check, read scope), the session cookie, the
trusted ALB header, loopback; sign-in, sign-out, the cookie's flags and lifetime."""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from pydantic import SecretStr

from opsbot.config import Settings
from opsbot.ui.auth import COOKIE, SESSION_LIFETIME
from opsbot.web.tokens import MAX_TOKEN_LENGTH
from tests.ui.seed import EVENTS_ONLY_TOKEN, READER_TOKEN, TOKEN

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def sign_in(client, token: str = READER_TOKEN, **headers: str):
    return client.post("/ui/login", data={"token": token, "next": "/ui/silences"}, headers=headers)


def set_cookie(response) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.getlist("Set-Cookie"):
        jar.load(header)
    return jar


def test_without_a_session_a_page_sends_the_browser_to_sign_in(ui_app) -> None:
    reply = ui_app.test_client().get("/ui/runs?limit=5")
    assert reply.status_code == 303
    assert reply.headers["Location"] == "/ui/login?next=/ui/runs?limit%3D5"


def test_sign_in_sets_a_strict_httponly_session_cookie_and_goes_back(ui_app) -> None:
    client = ui_app.test_client()
    reply = sign_in(client)
    assert (reply.status_code, reply.headers["Location"]) == (303, "/ui/silences")
    [header] = reply.headers.getlist("Set-Cookie")
    assert READER_TOKEN not in header
    morsel = set_cookie(reply)[COOKIE]
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/ui"
    assert not morsel["secure"]  # plain http
    assert morsel["max-age"] == str(int(SESSION_LIFETIME.total_seconds()))
    page = client.get("/ui/silences")
    assert page.status_code == 200 and b'id="reader">dashboard<' in page.data


def test_behind_https_the_cookie_is_secure(ui_app) -> None:
    reply = sign_in(ui_app.test_client(), **{"X-Forwarded-Proto": "https"})
    assert set_cookie(reply)[COOKIE]["secure"]


def test_a_wrong_token_is_refused_and_sets_nothing(ui_app) -> None:
    reply = sign_in(ui_app.test_client(), token="not-a-token-of-ours")
    assert reply.status_code == 401 and b"That token is not valid." in reply.data
    assert "Set-Cookie" not in reply.headers


def test_a_token_in_the_url_signs_nobody_in(ui_app) -> None:
    client = ui_app.test_client()
    assert client.get(f"/ui/login?token={READER_TOKEN}").status_code == 200
    assert client.get(f"/ui?token={READER_TOKEN}").status_code == 303


def test_a_token_without_the_read_scope_is_forbidden(ui_app) -> None:
    client = ui_app.test_client()
    reply = sign_in(client, token=EVENTS_ONLY_TOKEN)
    assert reply.status_code == 403 and b"lacks the read scope" in reply.data
    assert "Set-Cookie" not in reply.headers
    bearer = client.get("/ui", headers={"Authorization": f"Bearer {EVENTS_ONLY_TOKEN}"})
    assert bearer.status_code == 403 and b"lacks the read scope" in bearer.data
    ok = client.get("/ui", headers={"Authorization": f"Bearer {READER_TOKEN}"})
    assert ok.status_code == 200


def test_a_token_at_the_length_limit_is_checked_one_past_it_is_refused(ui_app) -> None:
    client = ui_app.test_client()
    assert sign_in(client, token="x" * MAX_TOKEN_LENGTH).status_code == 401
    reply = sign_in(client, token="x" * (MAX_TOKEN_LENGTH + 1))
    assert reply.status_code == 400 and b"at most" in reply.data


def test_the_session_lasts_its_lifetime_and_not_a_second_more(ui_app, clock) -> None:
    client = ui_app.test_client()
    sign_in(client)
    clock.advance(seconds=SESSION_LIFETIME.total_seconds())
    assert client.get("/ui").status_code == 200
    clock.advance(seconds=1)
    assert client.get("/ui").status_code == 303


def test_a_rotated_token_ends_its_sessions(ui_settings, make_app) -> None:
    first = make_app(ui_settings).test_client()
    sign_in(first, token=TOKEN)
    cookie = first.get_cookie(COOKIE, path="/ui")
    assert cookie is not None
    # another process of the same host shares the key file: the session holds there too
    same = make_app(ui_settings).test_client()
    same.set_cookie(COOKIE, cookie.value, path="/ui")
    assert same.get("/ui").status_code == 200
    rotated = ui_settings.model_copy(
        update={"api_token": SecretStr("a-brand-new-token-0123456789")}
    )
    after = make_app(rotated).test_client()
    after.set_cookie(COOKIE, cookie.value, path="/ui")
    assert after.get("/ui").status_code == 303


def test_a_forged_or_foreign_cookie_is_ignored(ui_settings, make_app, tmp_path) -> None:
    client = make_app(ui_settings).test_client()
    client.set_cookie(COOKIE, "gAAAAAforged", path="/ui")
    assert client.get("/ui").status_code == 303
    elsewhere = ui_settings.model_copy(update={"data_dir": tmp_path / "other-host"})
    foreign = make_app(elsewhere).test_client()
    sign_in(foreign)
    cookie = foreign.get_cookie(COOKIE, path="/ui")
    client.set_cookie(COOKIE, cookie.value, path="/ui")
    assert client.get("/ui").status_code == 303


def test_the_key_file_is_private_and_a_shared_secret_spans_hosts(
    ui_settings, make_app, tmp_path
) -> None:
    make_app(ui_settings).test_client().get("/ui")
    sign_in(make_app(ui_settings).test_client())
    mode = stat.S_IMODE(os.stat(ui_settings.data_dir / "ui-session.key").st_mode)
    assert mode == 0o600
    secret = SecretStr("s" * 32)
    one = ui_settings.model_copy(update={"ui_session_secret": secret, "data_dir": tmp_path / "a"})
    two = ui_settings.model_copy(update={"ui_session_secret": secret, "data_dir": tmp_path / "b"})
    first = make_app(one).test_client()
    sign_in(first)
    second = make_app(two).test_client()
    second.set_cookie(COOKIE, first.get_cookie(COOKIE, path="/ui").value, path="/ui")
    assert second.get("/ui").status_code == 200
    assert not (tmp_path / "a" / "ui-session.key").exists()


@pytest.mark.parametrize("size", [31, 32])
def test_a_session_secret_has_at_least_32_characters(size: int) -> None:
    if size < 32:
        with pytest.raises(ValueError, match="ui_session_secret"):
            Settings(ui_session_secret="s" * size)
    else:
        assert Settings(ui_session_secret="s" * size).ui_session_secret is not None


def test_sign_out_clears_the_cookie(ui_app) -> None:
    client = ui_app.test_client()
    sign_in(client)
    reply = client.post("/ui/logout")
    assert (reply.status_code, reply.headers["Location"]) == (303, "/ui/login")
    assert client.get_cookie(COOKIE, path="/ui") is None
    assert client.get("/ui").status_code == 303


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}],
)
def test_a_sign_in_posted_from_another_site_is_refused(ui_app, headers) -> None:
    reply = sign_in(ui_app.test_client(), **headers)
    assert reply.status_code == 403 and "Set-Cookie" not in reply.headers


@pytest.mark.parametrize(
    "target",
    ["//evil.example/ui", "https://evil.example/ui", "/api/incidents", "/ui\\@evil", "ui"],
)
def test_after_sign_in_the_browser_never_leaves_the_dashboard(ui_app, target) -> None:
    reply = ui_app.test_client().post("/ui/login", data={"token": READER_TOKEN, "next": target})
    assert reply.headers["Location"] == "/ui/"


def test_a_cross_site_link_without_the_cookie_reloads_from_our_own_origin(ui_app) -> None:
    reply = ui_app.test_client().get(
        "/ui/incidents/7?x=1", headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert reply.status_code == 200
    assert b'<meta http-equiv="refresh" content="0;url=/ui/incidents/7?x=1">' in reply.data
    assert reply.headers["Content-Security-Policy"] == CSP


def test_the_trusted_header_is_ignored_unless_configured(ui_app) -> None:
    reply = ui_app.test_client().get("/ui", headers={"x-amzn-oidc-identity": "alice"})
    assert reply.status_code == 303


def test_the_trusted_header_names_the_reader_when_configured(ui_settings, make_app) -> None:
    settings = ui_settings.model_copy(update={"ui_trusted_header": "x-amzn-oidc-identity"})
    client = make_app(settings).test_client()
    reply = client.get("/ui", headers={"X-Amzn-Oidc-Identity": "a" * 256})
    assert reply.status_code == 200 and b'id="reader">' + b"a" * 256 in reply.data
    assert b'id="logout"' not in reply.data  # the ALB signs people out, not opsbot
    too_long = client.get("/ui", headers={"X-Amzn-Oidc-Identity": "a" * 257})
    assert too_long.status_code == 400 and b"trusted identity header" in too_long.data
    assert client.get("/ui").status_code == 303  # without the header: sign in as usual


def test_with_no_token_configured_only_loopback_reads(settings, make_app, config_path) -> None:
    config_path.write_text("")
    client = make_app(settings).test_client()
    assert client.get("/ui").status_code == 200
    remote = client.get("/ui", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert remote.status_code == 401 and b"only on loopback" in remote.data
    assert remote.headers["Content-Type"].startswith("text/html")


def test_session_lifetime_is_twelve_hours() -> None:
    assert timedelta(hours=12) == SESSION_LIFETIME
