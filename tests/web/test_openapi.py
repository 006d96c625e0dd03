"""The OpenAPI document: served, valid OpenAPI 3.1, and the same routes and scopes as the app."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from openapi_spec_validator import validate

from opsbot.intake.events_schema import SCHEMA as EVENTS_SCHEMA
from opsbot.web.openapi import document
from opsbot.web.tokens import SCOPES
from tests.support.tokens import bearer, install_tokens

METHODS = ("get", "post", "put", "patch", "delete")
# A token holding every scope but one (the tokens of tests/support/tokens.py hold one each).
HOLDER = {"read": "reader", "write": "writer", "events": "feeder"}


@pytest.fixture
def app(settings, make_app, config_path, monkeypatch) -> Flask:
    install_tokens(monkeypatch, config_path)
    return make_app(settings)


def shape(path: str) -> str:
    """Return a route with its variables blanked: /api/incidents/{} for either spelling."""
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def app_routes(app: Flask) -> set[tuple[str, str]]:
    return {
        (shape(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    doc = document()
    return [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def test_the_document_is_served_without_a_token_and_is_valid_openapi_3_1(client) -> None:
    r = client.get("/api/openapi.json", environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert r.status_code == 200 and r.json == document()
    assert r.json["openapi"] == "3.1.0"
    validate(r.json)  # the OpenAPI 3.1 meta-schema (openapi-spec-validator)


def test_every_api_route_is_documented_and_every_documented_route_exists(app) -> None:
    documented = {(shape(path), method) for path, method, _ in operations()}
    assert app_routes(app) == documented


def test_path_parameters_are_declared_by_name() -> None:
    for path, _, op in operations():
        named = set(re.findall(r"\{([^}]+)\}", path))
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert named == declared, path


def test_every_operation_names_a_scope_and_documents_the_json_errors() -> None:
    for path, method, op in operations():
        if path == "/api/openapi.json":
            assert op["security"] == []
            continue
        scope = op["x-opsbot-scope"]
        assert scope in SCOPES and op["security"] == [{"bearerAuth": [scope]}], path
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/Error", (path, method, status)
        assert {"401", "403", "503"} <= set(op["responses"]), (path, method)


def test_the_error_shape_is_error_and_detail() -> None:
    error = document()["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "detail"]


def test_the_events_body_is_the_published_events_schema() -> None:
    batch = document()["components"]["schemas"]["EventBatch"]
    published = {k: v for k, v in EVENTS_SCHEMA.items() if not k.startswith("$")}
    published.pop("title"), published.pop("description")
    assert batch == published


def test_each_operation_needs_exactly_its_documented_scope(client) -> None:
    for path, method, op in operations()[1:]:  # all but the document itself
        url = re.sub(r"\{[^}]+\}", "1", path)
        scope = op["x-opsbot-scope"]
        for other in set(SCOPES) - {scope}:
            r = client.open(url, method=method.upper(), headers=bearer(HOLDER[other]))
            assert r.status_code == 403, (url, other)
        r = client.open(url, method=method.upper(), headers=bearer(HOLDER[scope]), json={})
        assert r.status_code not in (401, 403, 405), (url, r.status_code)
        assert str(r.status_code) in op["responses"], (url, r.status_code, r.json)
