"""deploy/terraform parses, its variables are used and documented, examples call it right."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opsbot.config import Settings
from tests.deploy.terraform import (
    EXAMPLES,
    MODULES,
    TERRAFORM,
    blocks,
    local,
    parse,
    references,
    text,
    tf_files,
)

SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def test_the_modules_and_examples_are_there() -> None:
    names = {str(p.relative_to(TERRAFORM)) for p in tf_files()}
    for module in MODULES:
        assert {f"{module}/variables.tf", f"{module}/outputs.tf", f"{module}/main.tf"} <= names
        assert f"examples/{module}/main.tf" in names
    assert (TERRAFORM / "README.md").exists()


@pytest.mark.parametrize("path", tf_files(), ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_tf_file_parses(path: Path) -> None:
    assert parse(path), f"{path} is empty"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_variable_is_used_and_documented(module: str) -> None:
    directory = MODULES[module]
    variables = blocks(directory, "variable")
    assert variables
    undocumented = [n for n, v in variables.items() if len(str(v.get("description", ""))) < 10]
    assert undocumented == []
    assert set(variables) - references(text(directory, without="variables.tf"), "var") == set()
    assert references(text(directory), "var") - set(variables) == set()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_output_is_documented_and_nothing_secret_is_output(module: str) -> None:
    outputs = blocks(MODULES[module], "output")
    assert outputs
    assert [n for n, o in outputs.items() if len(str(o.get("description", ""))) < 10] == []
    assert [n for n, o in outputs.items() if o.get("sensitive")] == []
    for name, output in outputs.items():
        assert "secret_string" not in str(output["value"]) and "password" not in name


@pytest.mark.parametrize("module", sorted(MODULES))
def test_examples_pass_every_required_variable_and_no_unknown_one(module: str) -> None:
    variables = blocks(MODULES[module], "variable")
    required = {n for n, v in variables.items() if "default" not in v}
    [call] = blocks(EXAMPLES[module], "module").values()
    assert call["source"] == f"../../{module}"
    given = set(call) - {"source"}
    assert required <= given and given <= set(variables)


def test_no_secret_value_is_set_in_terraform() -> None:
    source = "\n".join(p.read_text() for p in tf_files())
    assert "aws_secretsmanager_secret_version" not in source
    assert not re.search(r"\bmaster_password\s*=", source)
    assert re.search(r"manage_master_user_password\s*=\s*true", source)


def test_every_checkov_skip_gives_its_reason() -> None:
    skips = [(p.name, m) for p in tf_files() for m in SKIP.finditer(p.read_text())]
    assert skips, "the skip pattern found nothing: is it still right?"
    assert [(name, m[1]) for name, m in skips if len((m[2] or "").strip()) < 20] == []


def test_central_health_checks_use_the_ports_opsbot_listens_on() -> None:
    central = MODULES["central"]
    assert local(central, "worker_port") == Settings.model_fields["worker_port"].default
    assert local(central, "web_port") == 8080
