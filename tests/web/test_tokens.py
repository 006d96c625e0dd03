"""Named API tokens with scopes: the YAML section (``opsbot check``), 401/403, actors, no leaks."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy import select

from opsbot.cli import main
from opsbot.config import ConfigError, Settings, parse_policy
from opsbot.db.models import AuditEntry
from opsbot.web.tokens import MAX_TOKEN_LENGTH, MIN_SECRET_LENGTH, load_tokens, parse_tokens
from tests.support.sns import alarm_message, notify
from tests.support.tokens import HASHED, TOKENS, bearer, install_tokens, secret_of, tokens_yaml

SHA = "a" * 64
EVENT = {"id": "e-1", "source": "nagios", "resource": "db1", "title": "Disk full",
         "severity": "high"}  # fmt: skip


@pytest.fixture
def app(settings, make_app, config_path, monkeypatch):
    install_tokens(monkeypatch, config_path)
    return make_app(settings)


def problems(section: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_tokens(parse_policy(section, "opsbot.yaml"), env)
    return caught.value.errors


# -- the YAML section -------------------------------------------------------------------------


def test_the_section_names_tokens_by_variable_or_hash() -> None:
    specs = parse_tokens(parse_policy(tokens_yaml(), "opsbot.yaml"))
    assert {s.name: sorted(s.scopes) for s in specs} == {
        **{name: sorted(scopes) for name, scopes in TOKENS.items()},
        HASHED: ["read"],
    }


@pytest.mark.parametrize(
    ("token", "line", "message"),
    [
        ("{scopes: [read], secret_env: X, colour: red}", 2, "api_tokens.ci.colour: unknown key"),
        ("{scopes: [read], secret_env: X, sha: y}", 2, "did you mean 'sha256'?"),
        ("{secret_env: X}", 2, "missing required key 'scopes'"),
        ("{scopes: [admin], secret_env: X}", 2, "api_tokens.ci.scopes[0]: 'admin' is not one"),
        ("{scopes: [read, read], secret_env: X}", 2, "'read' is listed twice"),
        ("{scopes: [], secret_env: X}", 2, "expected a non-empty list"),
        ("{scopes: read, secret_env: X}", 2, "expected a non-empty list"),
        ("{scopes: [read]}", 2, "exactly one of secret_env"),
        (f"{{scopes: [read], secret_env: X, sha256: '{SHA}'}}", 2, "exactly one of secret_env"),
        ("{scopes: [read], secret_env: 'not a name'}", 2, "is not an environment variable"),
        ("{scopes: [read], sha256: abc}", 2, "expected 64 hex digits"),
        ("[read]", 2, "expected a mapping with scopes"),
    ],
)
def test_each_problem_is_reported_at_its_file_and_line(token, line, message) -> None:
    errors = problems(f"api_tokens:\n  ci: {token}\n")
    assert any(e.startswith(f"opsbot.yaml:{line}: ") and message in e for e in errors), errors


@pytest.mark.parametrize("name", ["default", "Upper", "-dash", "x" * 65, "a b"])
def test_bad_and_reserved_names_are_refused(name) -> None:
    errors = problems(f"api_tokens:\n  '{name}': {{scopes: [read], secret_env: X}}\n")
    assert errors and errors[0].startswith("opsbot.yaml:2: ")


def test_a_name_of_64_characters_is_accepted() -> None:
    section = f"api_tokens:\n  {'x' * 64}: {{scopes: [read], secret_env: X}}\n"
    assert parse_tokens(parse_policy(section, "opsbot.yaml"))[0].name == "x" * 64


def test_the_section_must_be_a_mapping() -> None:
    assert "api_tokens: expected a mapping" in problems("api_tokens: [a, b]\n")[0]


@pytest.mark.parametrize(
    ("length", "ok"),
    [(MIN_SECRET_LENGTH - 1, False), (MIN_SECRET_LENGTH, True), (MAX_TOKEN_LENGTH, True),
     (MAX_TOKEN_LENGTH + 1, False)],
)  # fmt: skip
def test_a_secret_in_the_environment_has_a_length_range(length, ok) -> None:
    section = "api_tokens:\n  ci: {scopes: [read], secret_env: CI_TOKEN}\n"
    policy = parse_policy(section, "opsbot.yaml")
    if ok:
        assert parse_tokens(policy, {"CI_TOKEN": "s" * length})
    else:
        assert "CI_TOKEN must hold" in problems(section, {"CI_TOKEN": "s" * length})[0]


def test_opsbot_check_names_file_line_and_key(tmp_path: Path) -> None:
    config = tmp_path / "opsbot.yaml"
    config.write_text("api_tokens:\n  ci:\n    scopes: [read, root]\n    secret_env: CI\n")
    result = CliRunner().invoke(main, ["check"], env={"OPSBOT_CONFIG": str(config)})
    assert result.exit_code == 2
    assert f"{config}:3: api_tokens.ci.scopes[1]: 'root' is not one of" in result.output


def test_opsbot_check_accepts_the_section_and_never_prints_a_secret(tmp_path: Path) -> None:
    config = tmp_path / "opsbot.yaml"
    config.write_text(tokens_yaml())
    env = {"OPSBOT_CONFIG": str(config), "OPSBOT_TEST_TOKEN_READER": secret_of("reader")}
    result = CliRunner().invoke(main, ["check"], env=env)
    assert result.exit_code == 0, result.output
    assert secret_of("reader") not in result.output


# -- authentication and scopes ----------------------------------------------------------------


def test_no_token_or_an_unknown_one_is_401_even_on_loopback(client) -> None:
    refused = [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"},
               {"Authorization": "Bearer"}, {"Authorization": f"Bearer {'x' * 2000}"}]  # fmt: skip
    for headers in refused:
        r = client.get("/api/incidents", headers=headers)
        assert r.status_code == 401 and r.json["error"] == "unauthorized", headers
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    # Once tokens exist, loopback needs one too (the test client is 127.0.0.1).
    assert client.get("/api/incidents").status_code == 401


READS = [("reader", "/api/incidents", 200), ("writer", "/api/incidents", 403),
         ("feeder", "/api/incidents", 403), (HASHED, "/api/incidents", 200),
         ("reader", "/api/silences", 200), ("writer", "/api/outbox/dead", 403)]  # fmt: skip


def test_a_read_needs_the_read_scope(client) -> None:
    for name, path, status in READS:
        r = client.get(path, headers=bearer(name), environ_base={"REMOTE_ADDR": "10.0.0.9"})
        assert r.status_code == status, (name, path)
        if status == 403:
            detail = f"The token '{name}' lacks the read scope."
            assert r.json == {"error": "forbidden", "detail": detail}
            assert 'error="insufficient_scope", scope="read"' in r.headers["WWW-Authenticate"]


def test_events_need_the_events_scope_and_store_nothing_otherwise(client, rt) -> None:
    for name in ("reader", "writer", "feeder"):
        r = client.post("/api/events", json={"events": [EVENT]}, headers=bearer(name))
        assert r.status_code == (200 if name == "feeder" else 403), name
        with rt.sessions() as s:
            stored = len(s.execute(select(AuditEntry)).all())
        assert stored == (1 if name == "feeder" else 0), name


def test_a_write_needs_the_write_scope(client, signer, clock) -> None:
    assert notify(client, signer, clock, alarm_message()).status_code == 200
    for name in ("reader", "feeder"):
        assert client.post("/api/incidents/1/acknowledge", headers=bearer(name)).status_code == 403
    assert client.get("/api/incidents/1", headers=bearer("reader")).json["status"] == "open"
    assert client.post("/api/incidents/1/acknowledge", headers=bearer("writer")).status_code == 200
    assert client.get("/api/incidents/1", headers=bearer("reader")).json["status"] == (
        "acknowledged"
    )


def test_the_audit_names_the_token_and_no_log_holds_a_secret(
    client, signer, clock, rt, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    assert notify(client, signer, clock, alarm_message()).status_code == 200
    client.post("/api/incidents/1/acknowledge", headers=bearer("ops-ci"))
    client.post("/api/incidents/1/resolve", headers=bearer("reader"))  # 403: logged by name
    client.get("/api/incidents", headers={"Authorization": "Bearer wrong-secret-value"})
    with rt.sessions() as s:
        actors = {e.actor for e in s.execute(select(AuditEntry)).scalars()}
    assert "api:ops-ci" in actors
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "ops-ci" in text and "API token reader lacks the write scope" in text
    for name in TOKENS:
        assert secret_of(name) not in text
    assert "wrong-secret-value" not in text


def test_a_token_whose_variable_is_unset_is_refused_and_the_rest_work(
    settings, make_app, config_path, monkeypatch, caplog
) -> None:
    install_tokens(monkeypatch, config_path)
    monkeypatch.delenv("OPSBOT_TEST_TOKEN_READER")
    client = make_app(settings).test_client()
    assert client.get("/api/incidents", headers=bearer("reader")).status_code == 401
    assert client.get("/api/incidents", headers=bearer("ops-ci")).status_code == 200
    assert "API token reader is refused: OPSBOT_TEST_TOKEN_READER is not set" in caplog.text


def test_a_broken_section_refuses_every_token_even_on_loopback(
    settings, make_app, config_path
) -> None:
    config_path.write_text("api_tokens:\n  ci: {scopes: [read]}\n")  # no secret named
    client = make_app(settings).test_client()
    assert client.get("/api/incidents").status_code == 401


def test_opsbot_api_token_is_the_default_token_with_every_scope(
    settings, make_app, config_path, monkeypatch, signer, clock
) -> None:
    install_tokens(monkeypatch, config_path)
    app = make_app(settings.model_copy(update={"api_token": SecretStr("the-old-shared-one")}))
    client = app.test_client()
    old = {"Authorization": "Bearer the-old-shared-one"}
    assert notify(client, signer, clock, alarm_message()).status_code == 200
    assert client.get("/api/incidents", headers=old).status_code == 200
    assert client.post("/api/events", json={"events": [EVENT]}, headers=old).status_code == 200
    assert client.post("/api/incidents/1/acknowledge", headers=old).status_code == 200
    audit = client.get("/api/incidents/1", headers=old).json["audit"]
    assert audit[-1]["actor"] == "api:default"
    assert client.get("/api/incidents", headers=bearer("reader")).status_code == 200


def test_the_table_compares_every_hash() -> None:
    policy = parse_policy(tokens_yaml(), "opsbot.yaml")
    env = {f"OPSBOT_TEST_TOKEN_{n.upper().replace('-', '_')}": secret_of(n) for n in TOKENS}
    table = load_tokens(Settings(), policy, env)
    assert [t.name for t in table.tokens] == [*TOKENS, HASHED]
    assert table.match(secret_of(HASHED)).name == HASHED  # type: ignore[union-attr]
    assert table.match(secret_of("reader") + "x") is None
    assert all(secret_of(t.name).encode() not in t.digest for t in table.tokens)


def test_a_reloaded_configuration_changes_the_tokens_at_once(client, rt, config_path) -> None:
    assert client.get("/api/incidents", headers=bearer("reader")).status_code == 200
    config_path.write_text(tokens_yaml({"ops-ci": TOKENS["ops-ci"]}))  # reader is gone
    rt.reload()
    assert client.get("/api/incidents", headers=bearer("reader")).status_code == 401
    assert client.get("/api/incidents", headers=bearer("ops-ci")).status_code == 200
