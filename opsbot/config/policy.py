"""The policy schema of the YAML file: accounts, rules, priorities, silences, flapping, Slack roles.

The file is read with the line-aware reader of ``yamldoc``; every problem is
reported as ``FILE:LINE: key.path[2].key: problem``, all of them at once. A
key nobody reads is an error (with the closest known key), at every level.
The sections other packages parse (``SECTION_KEYS``: ``jira``,
``escalation``, ``patch_windows``, ...) are kept in ``Policy.extra`` as a
``yamldoc.Section``, so their parsers report against the lines of the same
file; a rule keeps its Jira keys (``RULE_JIRA_KEYS``) in ``Rule.extra``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from opsbot.config.yamldoc import (
    ConfigError,
    Document,
    KeyPath,
    Section,
    choice,
    describe,
    duration,
    flag,
    keys,
    mapping,
    moment,
    read_text,
    text,
)
from opsbot.core.accounts import DEFAULT_ENVIRONMENT, ENVIRONMENTS, Account, AccountMap
from opsbot.core.alert import Severity
from opsbot.core.policy import SLACK_ROLES, FlapPolicy, Policy
from opsbot.core.rules import DEFAULT_PRIORITIES, PRIORITIES, PRIORITY_FALLBACK, Match, Rule
from opsbot.core.silences import Silence

TOP_LEVEL_KEYS = (
    "accounts",
    "default_environment",
    "rules",
    "priorities",
    "silences",
    "reopen_window",
    "flapping",
    "slack",
)
# Parsed elsewhere from Policy.extra: jira/config.py, incidents/escalation.py,
# runbooks/patch_windows.py, intake/sources_config.py (cloudtrail, ec2), runbooks/service.py.
# approvals: read by opsbot/approvals/config.py, checked here (_approvals_section).
SECTION_KEYS = (
    "jira",
    "escalation",
    "patch_windows",
    "cloudtrail",
    "ec2",
    "runbooks",
    "approvals",
    "heartbeats",  # heartbeats/config.py
    "cost",  # intake/sources_config.py: handlers/cost.py thresholds_from_config
    "sentry",  # intake/sources_config.py: handlers/sentry.py projects_from_config
    "api_tokens",  # web/tokens.py: named API tokens and their scopes
)
APPROVALS_SECTION_KEYS = ("channel", "expires_after", "environments", "people")
RUNBOOKS_SECTION_KEYS = ("approvals_channel",)
ACCOUNT_KEYS = ("name", "environment", "team", "role_arn")
MATCH_KEYS = (
    "source",
    "detail_type",
    "environment",
    "account",
    "region",
    "severity",
    "alarm_name",
    "resource",
    "labels",
    "fingerprint",
)
RULE_OWN_KEYS = ("match", "priority", "jira_project", "slack_channel", "ticket", "runbook", "auto")
# Read by jira/config.py from Rule.extra.
RULE_JIRA_KEYS = (
    "jira_issue_type",
    "jira_request_type",
    "components",
    "jira_assignee",
    "jira_fields",
)
RULE_KEYS = RULE_OWN_KEYS + RULE_JIRA_KEYS
SILENCE_KEYS = ("match", "starts", "until", "reason")
FLAPPING_KEYS = ("changes", "window")
SLACK_KEYS = ("roles",)
SEVERITIES = tuple(s.value for s in Severity)

ACCOUNT_ID = re.compile(r"\d{12}")
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/\S+")
JIRA_PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9_]+")


def _severities(doc: Document, value: Any, path: KeyPath) -> tuple[Severity, ...]:
    if isinstance(value, str):
        return (Severity(v),) if (v := choice(doc, value, path, SEVERITIES)) else ()
    if not isinstance(value, list) or not value:
        doc.error(path, f"expected a severity or a non-empty list of them, got {describe(value)}")
        return ()
    found = [choice(doc, item, (*path, i), SEVERITIES) for i, item in enumerate(value)]
    return tuple(Severity(v) for v in found if v)


def _match(doc: Document, value: Any, path: KeyPath, accounts: AccountMap | None) -> Match | None:
    data = mapping(doc, value, path)
    if data is None:
        return None
    before = len(doc.found)
    keys(doc, data, path, MATCH_KEYS, ())
    fields: dict[str, Any] = {}
    for key in ("source", "detail_type", "region", "alarm_name", "resource", "fingerprint"):
        if key in data:
            what = "a glob pattern (text)" if key in ("alarm_name", "resource") else "text"
            fields[key] = text(doc, data[key], (*path, key), what)
    if "environment" in data:
        fields["environment"] = choice(
            doc, data["environment"], (*path, "environment"), ENVIRONMENTS
        )
    if "account" in data:
        fields["account"] = account = text(doc, data["account"], (*path, "account"))
        known = accounts is None or accounts.find(account or "") is not None
        if account is not None and not (ACCOUNT_ID.fullmatch(account) or known):
            doc.error((*path, "account"), f"{account!r} is not a configured account name or id")
    if "severity" in data:
        fields["severity"] = _severities(doc, data["severity"], (*path, "severity"))
    if "labels" in data and (labels := mapping(doc, data["labels"], (*path, "labels"))) is not None:
        globs = {
            k: text(doc, v, (*path, "labels", k), "a glob pattern (text)")
            for k, v in labels.items()
        }
        fields["labels"] = tuple(globs.items())
    return Match(**fields) if len(doc.found) == before else None


def _account(doc: Document, account_id: str, value: Any, path: KeyPath) -> Account | None:
    before = len(doc.found)
    if not ACCOUNT_ID.fullmatch(account_id):
        doc.error(path, f"{account_id!r} is not an AWS account id (12 digits)")
    data = mapping(doc, value, path, "a mapping with name and environment")
    if data is None:
        return None
    keys(doc, data, path, ACCOUNT_KEYS, ("name", "environment"))
    name = text(doc, data.get("name", ""), (*path, "name"))
    if "name" in data and name == "":
        doc.error((*path, "name"), "must not be empty")
    environment = choice(doc, data.get("environment", "prod"), (*path, "environment"), ENVIRONMENTS)
    team = text(doc, data.get("team", ""), (*path, "team"))
    role_arn = text(doc, data.get("role_arn", ""), (*path, "role_arn"))
    if role_arn and not ROLE_ARN.fullmatch(role_arn):
        doc.error((*path, "role_arn"), f"{role_arn!r} is not an IAM role ARN")
    if len(doc.found) > before or not (name and environment):
        return None
    return Account(account_id, name, environment, team or "", role_arn or "")


def _accounts(doc: Document, value: Any, default_environment: str) -> AccountMap:
    data = mapping(doc, value, ("accounts",), "a mapping of account id to account") or {}
    owners: dict[str, str] = {}
    accounts = []
    for account_id, entry in data.items():
        account = _account(doc, account_id, entry, ("accounts", account_id))
        if account is None:
            continue
        if account.name in owners:
            where = ("accounts", account_id, "name")
            doc.error(
                where, f"{account.name!r} is already the name of account {owners[account.name]}"
            )
        owners[account.name] = account_id
        accounts.append(account)
    return AccountMap(tuple(accounts), default_environment)


def _rule(doc: Document, value: Any, path: KeyPath, accounts: AccountMap) -> Rule | None:
    data = mapping(doc, value, path)
    if data is None:
        return None
    before = len(doc.found)
    keys(doc, data, path, RULE_KEYS, ("match",))
    match = _match(doc, data["match"], (*path, "match"), accounts) if "match" in data else None
    fields: dict[str, Any] = {}
    if "priority" in data:
        fields["priority"] = choice(doc, data["priority"], (*path, "priority"), PRIORITIES)
    for key in ("jira_project", "slack_channel", "runbook"):
        if key in data:
            fields[key] = text(doc, data[key], (*path, key))
    for key in ("ticket", "auto"):
        if key in data:
            fields[key] = flag(doc, data[key], (*path, key))
    project = fields.get("jira_project")
    if project is not None and not JIRA_PROJECT_KEY.fullmatch(project):
        doc.error((*path, "jira_project"), f"{project!r} is not a Jira project key, like SEC")
    if fields.get("auto") and not fields.get("runbook"):
        doc.error((*path, "auto"), "true needs a runbook to run")
    if match is None or len(doc.found) > before:
        return None
    extra = {k: v for k, v in data.items() if k in RULE_JIRA_KEYS}
    return Rule(match=match, extra=extra, **fields)


def _priorities(doc: Document, value: Any) -> dict[str, dict[Severity, str]]:
    result = {env: dict(matrix) for env, matrix in DEFAULT_PRIORITIES.items()}
    data = mapping(doc, value, ("priorities",), "a mapping of environment to priorities") or {}
    for env in sorted(data, key=lambda name: name in PRIORITY_FALLBACK):  # prod, nonprod first
        path: KeyPath = ("priorities", env)
        if choice(doc, env, path, ENVIRONMENTS) is None:
            continue
        merged = dict(result.get(env) or result[PRIORITY_FALLBACK[env]])
        matrix = mapping(doc, data[env], path, "a mapping of severity to priority") or {}
        for key, item in matrix.items():
            # Both {critical: P1} and {P1: critical} (or {P1: [critical, high]}) are accepted.
            if key in PRIORITIES and (found := _severities(doc, item, (*path, key))):
                merged.update(dict.fromkeys(found, key))
            elif (
                key not in PRIORITIES
                and choice(doc, key, (*path, key), SEVERITIES)
                and (priority := choice(doc, item, (*path, key), PRIORITIES))
            ):
                merged[Severity(key)] = priority
        result[env] = merged
    return result


def _silence(doc: Document, value: Any, index: int, accounts: AccountMap) -> Silence | None:
    path: KeyPath = ("silences", index)
    data = mapping(doc, value, path)
    if data is None:
        return None
    before = len(doc.found)
    keys(doc, data, path, SILENCE_KEYS, ("match", "until"))
    match = _match(doc, data["match"], (*path, "match"), accounts) if "match" in data else None
    ends_at = moment(doc, data["until"], (*path, "until")) if "until" in data else None
    starts_at = moment(doc, data["starts"], (*path, "starts")) if "starts" in data else None
    reason = text(doc, data.get("reason", ""), (*path, "reason"))
    if starts_at and ends_at and ends_at <= starts_at:
        doc.error((*path, "until"), "must be later than starts")
    if match is None or ends_at is None or len(doc.found) > before:
        return None
    return Silence(f"config-{index}", match, starts_at, ends_at, reason or "", "config")


def _flapping(doc: Document, value: Any) -> FlapPolicy:
    data = mapping(doc, value, ("flapping",)) or {}
    keys(doc, data, ("flapping",), FLAPPING_KEYS, ())
    policy = FlapPolicy()
    changes = data.get("changes", policy.changes)
    if isinstance(changes, bool) or not isinstance(changes, int) or changes < 1:
        doc.error(("flapping", "changes"), f"expected a whole number >= 1, got {describe(changes)}")
        changes = policy.changes
    window = duration(doc, data["window"], ("flapping", "window")) if "window" in data else None
    if window is not None and window <= timedelta(0):
        doc.error(("flapping", "window"), "must be longer than 0s")
    return FlapPolicy(changes, window or policy.window)


def _slack_roles(doc: Document, value: Any) -> dict[str, tuple[str, ...]]:
    data = mapping(doc, value, ("slack",)) or {}
    keys(doc, data, ("slack",), SLACK_KEYS, ())
    roles = (
        mapping(doc, data.get("roles", {}), ("slack", "roles"), "a mapping of role to ids") or {}
    )
    result: dict[str, tuple[str, ...]] = {}
    for role, ids in roles.items():
        path: KeyPath = ("slack", "roles", role)
        if choice(doc, role, path, SLACK_ROLES) is None:
            continue
        items = ids if isinstance(ids, list) else [ids]
        found = [
            text(doc, item, (*path, i), "a Slack user or group id") for i, item in enumerate(items)
        ]
        result[role] = tuple(item for item in found if item)
    return result


def _runbooks_section(doc: Document, value: Any) -> None:
    data = mapping(doc, value, ("runbooks",)) or {}
    keys(doc, data, ("runbooks",), RUNBOOKS_SECTION_KEYS, ())
    if "approvals_channel" in data:
        text(doc, data["approvals_channel"], ("runbooks", "approvals_channel"), "a Slack channel")


def _approvals_section(doc: Document, value: Any) -> None:
    path: KeyPath = ("approvals",)
    data = mapping(doc, value, path) or {}
    keys(doc, data, path, APPROVALS_SECTION_KEYS, ())
    channel = text(doc, data.get("channel", ""), (*path, "channel"), "a Slack channel")
    if "channel" in data and channel is not None and not 0 < len(channel) <= 64:
        doc.error((*path, "channel"), "a Slack channel name or id has 1 to 64 characters")
    if "expires_after" in data:
        ttl = duration(doc, data["expires_after"], (*path, "expires_after"))
        if ttl is not None and ttl <= timedelta(0):
            doc.error((*path, "expires_after"), "must be longer than 0s")
    levels = mapping(doc, data.get("environments", {}), (*path, "environments")) or {}
    for env, level in levels.items():
        if choice(doc, env, (*path, "environments", env), ENVIRONMENTS) is not None:
            choice(doc, level, (*path, "environments", env), ("none", "one", "other"))
    what = "a mapping of AWS name to Slack id"
    people = mapping(doc, data.get("people", {}), (*path, "people"), what) or {}
    for name, user in people.items():
        found = text(doc, user, (*path, "people", name), "a Slack user id")
        if found is not None and not re.fullmatch(r"[UW][A-Z0-9]{2,}", found):
            doc.error((*path, "people", name), f"{found!r} is not a Slack user id like U0123ABCD")


def _list(doc: Document, given: Mapping[str, Any], key: str) -> list[Any]:
    value = given.get(key, [])
    if isinstance(value, list):
        return value
    doc.error((key,), f"expected a list of {key}, got {describe(value)}")
    return []


def _default_environment(doc: Document, given: Mapping[str, Any]) -> str:
    if "default_environment" not in given:
        return DEFAULT_ENVIRONMENT
    value = given["default_environment"]
    found = choice(doc, value, ("default_environment",), ENVIRONMENTS)
    return found or DEFAULT_ENVIRONMENT


def _policy(doc: Document, data: Any) -> Policy:
    root = mapping(doc, {} if data is None else data, (), "a mapping of settings")
    if root is None:
        return Policy.default()
    given = {key: value for key, value in root.items() if value is not None}
    keys(doc, root, (), TOP_LEVEL_KEYS + SECTION_KEYS, ())
    if "runbooks" in given:
        _runbooks_section(doc, given["runbooks"])
    if "approvals" in given:
        _approvals_section(doc, given["approvals"])
    accounts = _accounts(doc, given.get("accounts", {}), _default_environment(doc, given))
    rules = _list(doc, given, "rules")
    silences = _list(doc, given, "silences")
    reopen = (
        duration(doc, given["reopen_window"], ("reopen_window",))
        if "reopen_window" in given
        else None
    )
    extra = {key: value for key, value in root.items() if key in SECTION_KEYS}
    return Policy(
        accounts=accounts,
        rules=tuple(r for i, v in enumerate(rules) if (r := _rule(doc, v, ("rules", i), accounts))),
        priorities=_priorities(doc, given.get("priorities", {})),
        silences=tuple(s for i, v in enumerate(silences) if (s := _silence(doc, v, i, accounts))),
        reopen_window=reopen if reopen is not None else timedelta(hours=24),
        flapping=_flapping(doc, given.get("flapping", {})),
        slack_roles=_slack_roles(doc, given.get("slack", {})),
        extra=Section(extra, doc.fresh()),
    )


def parse_policy(text: str, source: str = "<string>") -> Policy:
    """Return the policy in a YAML text; raise ConfigError listing every problem.

    ``Policy.extra`` is a ``yamldoc.Section``: the sections other packages
    parse from it report problems at their line in this text.
    """
    doc, data = read_text(text, source)
    policy = _policy(doc, data)
    doc.check()
    return policy


def load_policy(path: Path, *, required: bool = False) -> Policy:
    """Return the policy in a YAML file, or the default one when the file is absent.

    With ``required`` a missing file is an error. Raises ConfigError naming
    the file, line and key of every problem.
    """
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError([f"{path}: configuration file not found"]) from None
        return Policy.default()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read the configuration file: {exc}"]) from None
    return parse_policy(content, str(path))


def parse_match(
    doc: Document, value: Any, path: KeyPath, accounts: AccountMap | None
) -> Match | None:
    """Return the Match a ``match:`` value describes, recording problems at its lines in doc."""
    return _match(doc, value, path, accounts)


def match_from_mapping(
    data: Mapping[str, Any], accounts: AccountMap | None = None, source: str = "match"
) -> Match:
    """Return the Match a YAML-style mapping describes; raise ConfigError if it is invalid."""
    doc = Document(source, with_lines=False)
    match = _match(doc, dict(data), (), accounts)
    if match is None:
        raise ConfigError(doc.errors)
    return match


def match_to_mapping(match: Match) -> dict[str, Any]:
    """Return the YAML-style mapping of a Match (the inverse of match_from_mapping)."""
    data: dict[str, Any] = {
        key: getattr(match, key)
        for key in (
            "source",
            "detail_type",
            "environment",
            "account",
            "region",
            "alarm_name",
            "resource",
            "fingerprint",
        )
        if getattr(match, key) is not None
    }
    if match.severity:
        data["severity"] = [s.value for s in match.severity]
    if match.labels:
        data["labels"] = dict(match.labels)
    return data


class SilenceRecord(Protocol):
    """A stored silence, as the database returns it."""

    @property
    def id(self) -> int: ...
    @property
    def matcher(self) -> Mapping[str, Any]: ...
    @property
    def starts_at(self) -> datetime | None: ...
    @property
    def ends_at(self) -> datetime: ...
    @property
    def reason(self) -> str: ...
    @property
    def created_by(self) -> str: ...


def silence_from_row(row: SilenceRecord) -> Silence:
    """Return the core Silence of a stored one; its id is the row id as text."""
    match = match_from_mapping(row.matcher, source=f"silence {row.id}")
    return Silence(str(row.id), match, row.starts_at, row.ends_at, row.reason, row.created_by)
