"""The runbook catalogue: every shipped runbook validates; broken ones are named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsbot.config import ConfigError
from opsbot.core import runbook_policy as rp
from opsbot.runbooks.catalogue import (
    RenderError,
    load_catalogue,
    parse_runbook,
    render_request,
    runbook_files,
)

SHIPPED, _ = runbook_files(None)
EXPECTED = {
    "restart-instance", "restart-ecs-service", "free-disk-space", "collect-diagnostics",
    "patch-scan", "patch-install",
}  # fmt: skip

GOOD = """\
name: tidy
title: Tidy up
kind: command
document: AWS-RunShellScript
parameters:
  InstanceId: {type: string, pattern: "i-[0-9a-f]+"}
targets:
  instance_ids: ["{{ params.InstanceId }}"]
"""


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_runbook_validates(path: Path) -> None:
    book = parse_runbook(path.read_text(), str(path))
    assert book.name == path.stem and book.title and book.document
    assert book.approval["prod"] == "other"  # production always needs another person
    if book.kind == "automation" or "Install" in str(book.document_parameters):
        assert book.dangerous, "anything that reboots or stops must say so"


def test_the_catalogue_ships_the_examples() -> None:
    assert {p.stem for p in SHIPPED} == EXPECTED
    assert set(load_catalogue(None).runbooks) == EXPECTED


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (("kind: command", "kind: shell"), "t.yaml:3: kind: 'shell' is not one of command"),
        (("title: Tidy up\n", ""), "t.yaml:1: missing required key 'title'"),
        (("{type: string,", "{type: text,"), "t.yaml:6: parameters.InstanceId.type: 'text'"),
        (("i-[0-9a-f]+", "i-[0-9"), "t.yaml:6: parameters.InstanceId.pattern: not a regular"),
        (("document:", "max_errors: lots\ndocument:"), "t.yaml:4: max_errors: 'lots' is not"),
        (("title:", "timeout: 3 weeks\ntitle:"), "t.yaml:2: timeout: '3 weeks' is not a duration"),
        (("targets:", "approval: {prod: none}\ntargets:"), "t.yaml:7: approval.prod: prod always"),
        (("params.InstanceId }}", "params.InstanceId }"), "t.yaml:8: targets.instance_ids: not a"),
        (("title:", "titel: x\ntitle:"), "t.yaml:2: titel: unknown key; did you mean 'title'?"),
    ],
)
def test_a_broken_runbook_is_rejected_naming_file_line_and_key(change, where) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_runbook(GOOD.replace("name: tidy", "name: t").replace(*change), "t.yaml")
    assert any(e.startswith(where) for e in caught.value.errors), caught.value.errors


def test_all_problems_of_a_directory_are_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "tidy.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text("name: b\nkind: [\n")
    (tmp_path / "c.yaml").write_text(GOOD.replace("name: tidy", "name: c").replace("kind", "knd"))
    with pytest.raises(ConfigError) as caught:
        load_catalogue(tmp_path)
    text = str(caught.value)
    assert "b.yaml:" in text and "c.yaml:3: knd: unknown key" in text and "tidy" not in text


def test_templates_are_sandboxed_and_strict() -> None:
    book = parse_runbook(GOOD, "tidy.yaml")
    sneaky = rp.Param("InstanceId", value="{{ alert.__class__.__mro__ }}")
    evil = rp.Runbook(**{**book.__dict__, "parameters": (sneaky,)})
    with pytest.raises(RenderError, match=r"cannot fill .*__class__"):
        render_request(evil, {}, {"alert": {"labels": {}}})
    missing = rp.Param("InstanceId", value="{{ alert.labels['dim.InstanceId'] }}")
    strict = rp.Runbook(**{**book.__dict__, "parameters": (missing,)})
    with pytest.raises(RenderError, match="cannot fill"):
        render_request(strict, {}, {"alert": {"labels": {}}})
    filled = render_request(strict, {}, {"alert": {"labels": {"dim.InstanceId": "i-0abc1234"}}})
    assert filled.instance_ids == ["i-0abc1234"]
