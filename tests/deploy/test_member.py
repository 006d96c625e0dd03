"""The member module matches the code: runbook documents, event sources, CloudTrail watch list."""

from __future__ import annotations

from collections import defaultdict

from handlers.cloudtrail import DEFAULT_WATCH
from handlers.sources import BY_SOURCE, CLOUDTRAIL_TYPES
from opsbot.runbooks.catalogue import load_catalogue
from tests.deploy.terraform import MODULES, ROOT, blocks, local, resources, typed

MEMBER = MODULES["member"]
# Alarms reach opsbot through the alarm action topic; their EventBridge twin would deliver twice.
BY_TOPIC = {"aws.cloudwatch"}


def catalogue_documents() -> dict[str, set[str]]:
    """Return the SSM documents of the shipped runbooks, by kind (command, automation)."""
    found: dict[str, set[str]] = defaultdict(set)
    for book in load_catalogue(ROOT / "runbooks").runbooks.values():
        found[book.kind].add(book.document)
    return found


def test_the_role_may_run_exactly_the_catalogue_documents() -> None:
    variables = blocks(MEMBER, "variable")
    documents = catalogue_documents()
    assert set(variables["command_documents"]["default"]) == documents["command"]
    assert set(variables["automation_documents"]["default"]) == documents["automation"]
    assert set(documents) == {"command", "automation"}


def test_the_module_creates_every_custom_document_the_catalogue_names() -> None:
    custom = {
        d for docs in catalogue_documents().values() for d in docs if not d.startswith("AWS-")
    }
    made = {r["name"] for r in resources(MEMBER, "aws_ssm_document").values()}
    assert custom == made


def test_the_role_policy_scopes_send_command_to_tagged_instances() -> None:
    policy = typed(MEMBER, "data", "aws_iam_policy_document")["runbooks"]
    statements = {s["sid"]: s for s in policy["statement"]}
    tagged = statements["OnTaggedInstancesOnly"]
    assert tagged["actions"] == ["ssm:SendCommand"]
    [condition] = tagged["condition"]
    assert condition["variable"] == "${local.tag_condition}"
    assert local(MEMBER, "tag_condition").startswith("ssm:resourceTag/")
    documents = statements["SendTheCatalogueCommands"]
    assert documents["resources"] == "${local.command_document_arns}"
    assert "automation_definition_arns" in str(
        statements["StartTheCatalogueAutomations"]["resources"]
    )
    wildcard = [s for s in statements.values() if s["resources"] == ["*"]]
    writes = {
        a
        for s in wildcard
        for a in s["actions"]
        if not a.split(":")[1].startswith(("Describe", "Get", "List"))
    }
    assert writes == {"ssm:CancelCommand"}


def test_the_event_rules_cover_every_source_opsbot_handles() -> None:
    sources = local(MEMBER, "event_sources")
    by_source = {rule["source"][0]: set(rule["detail_type"]) for rule in sources.values()}
    handled = {s: set(types) for s, types in BY_SOURCE.items() if types and s not in BY_TOPIC}
    assert by_source == handled


def test_the_cloudtrail_rule_forwards_the_default_watch_list() -> None:
    variables = blocks(MEMBER, "variable")
    assert set(variables["cloudtrail_event_names"]["default"]) == {
        w.event_name for w in DEFAULT_WATCH
    }
    unrouted = {source for source, types in BY_SOURCE.items() if not types}
    assert unrouted <= set(local(MEMBER, "cloudtrail_sources"))
    rule = resources(MEMBER, "aws_cloudwatch_event_rule")["cloudtrail"]
    assert all(kind in rule["event_pattern"] for kind in CLOUDTRAIL_TYPES)
