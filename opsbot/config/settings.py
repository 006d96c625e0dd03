"""Typed settings from ``OPSBOT_*`` variables, and the YAML policy file with precise errors.

The YAML file is composed into a node tree and walked by hand, so every key
and list item keeps its line number; every problem in the file is reported as
``FILE:LINE: key.path[2].key: problem``, all of them at once.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Protocol

import yaml
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from opsbot.core.accounts import DEFAULT_ENVIRONMENT, ENVIRONMENTS, Account, AccountMap
from opsbot.core.alert import Severity
from opsbot.core.durations import parse_duration
from opsbot.core.policy import SLACK_ROLES, FlapPolicy, Policy
from opsbot.core.rules import DEFAULT_PRIORITIES, PRIORITIES, PRIORITY_FALLBACK, Match, Rule
from opsbot.core.silences import Silence

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SNS_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]+")


class Settings(BaseSettings):
    """Endpoints, secrets and knobs, from ``OPSBOT_*`` environment variables.

    An empty variable counts as unset. Secrets are SecretStr: never shown in
    a repr, a log line or a validation error.
    """

    model_config = SettingsConfigDict(env_prefix="OPSBOT_", env_ignore_empty=True, extra="ignore")

    database_url: str = Field(default="sqlite:///opsbot.db", min_length=1)
    config: Path = Path("opsbot.yaml")
    data_dir: Path = Path(".opsbot")
    sns_topic_arns: Annotated[list[str], NoDecode] = []
    sns_cert_dir: Path | None = None
    sns_max_age_seconds: int = Field(default=3600, gt=0)
    api_token: SecretStr | None = None
    jira_url: str | None = None
    jira_user: str | None = None
    jira_token: SecretStr | None = None
    jira_project: str | None = None
    jira_issue_type: str = "Task"
    jira_service_desk_id: str | None = None
    jira_request_type_id: str | None = None
    jira_webhook_secret: SecretStr | None = None
    jira_cloud: bool | None = None  # None: ask the server (serverInfo deploymentType)
    jira_requests_per_second: float = Field(default=5.0, gt=0)
    jira_timeout_seconds: float = Field(default=10.0, gt=0)
    jira_reconcile_seconds: int = Field(default=300, ge=30)
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_channel: str | None = None
    slack_team_id: str | None = None
    slack_command: str = Field(default="/ops", pattern=r"^/[a-z0-9_-]+$")
    runbooks_dir: Path = Path("runbooks")
    log_level: str = "INFO"
    outbox_max_attempts: int = Field(default=12, ge=1)
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    sqs_queue_urls: Annotated[list[str], NoDecode] = []
    sqs_trust_sns_envelope: bool = False

    @field_validator("sqs_queue_urls", mode="before")
    @classmethod
    def _split_queue_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value

    @field_validator("sns_topic_arns", mode="before")
    @classmethod
    def _split_topic_arns(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [arn.strip() for arn in value.split(",") if arn.strip()]
        return value

    @field_validator("sns_topic_arns")
    @classmethod
    def _check_topic_arns(cls, value: list[str]) -> list[str]:
        for arn in value:
            if not SNS_TOPIC_ARN.fullmatch(arn):
                raise ValueError(
                    f"{arn!r} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"
                )
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @field_validator("jira_url", "slack_api_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _end_with_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @property
    def effective_cert_dir(self) -> Path:
        """The pinned SNS certificate directory: OPSBOT_SNS_CERT_DIR, else data_dir/sns-certs."""
        return self.sns_cert_dir if self.sns_cert_dir is not None else self.data_dir / "sns-certs"

    @property
    def jira_enabled(self) -> bool:
        """Whether Jira is configured: URL, token, and a project or service desk + request type."""
        desk = bool(self.jira_service_desk_id and self.jira_request_type_id)
        return bool(self.jira_url and self.jira_token and (self.jira_project or desk))

    @property
    def slack_enabled(self) -> bool:
        """Whether Slack is configured: bot token and signing secret."""
        return bool(self.slack_bot_token and self.slack_signing_secret)


class ConfigError(Exception):
    """The configuration is wrong; ``errors`` holds one precise message per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)


KeyPath = tuple[str | int, ...]

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
)
RULE_KEYS = ("match", "priority", "jira_project", "slack_channel", "ticket", "runbook", "auto")
SILENCE_KEYS = ("match", "starts", "until", "reason")
FLAPPING_KEYS = ("changes", "window")
SLACK_KEYS = ("roles",)
SEVERITIES = tuple(s.value for s in Severity)

ACCOUNT_ID = re.compile(r"\d{12}")
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/\S+")
JIRA_PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9_]+")
PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_NODES = 100_000  # an alias bomb is a configuration error, not an outage


def _dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


class _Document:
    """Plain values read from YAML nodes (or a mapping), with the line of every key and item."""

    def __init__(self, source: str, *, with_lines: bool = True) -> None:
        self.source = source
        self.with_lines = with_lines
        self.lines: dict[KeyPath, int] = {(): 1}
        self.raw: dict[KeyPath, str] = {}
        self.found: list[tuple[int, str]] = []
        self._constructor = yaml.constructor.SafeConstructor()
        self._open: set[int] = set()
        self._nodes = 0

    @property
    def errors(self) -> list[str]:
        return [message for _, message in sorted(self.found, key=lambda item: item[0])]

    def error(self, path: KeyPath, message: str) -> None:
        """Record a problem at the line of the longest known prefix of ``path``."""
        where = f"{_dotted(path)}: " if path else ""
        if not self.with_lines:
            self.found.append((0, f"{self.source}: {where}{message}"))
            return
        line = next(
            self.lines[path[:n]] for n in range(len(path), -1, -1) if path[:n] in self.lines
        )
        self.found.append((line, f"{self.source}:{line}: {where}{message}"))

    def load(self, node: yaml.Node, path: KeyPath = ()) -> Any:
        self._nodes += 1
        if id(node) in self._open:
            self.error(path, "an alias refers to the value that contains it")
            return None
        if self._nodes > MAX_NODES:
            if self._nodes == MAX_NODES + 1:
                self.error(path, f"more than {MAX_NODES} values (aliases expand too far)")
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return [
                    self.load(item, self._at(path, i, item)) for i, item in enumerate(node.value)
                ]
            return self._scalar(node, path)
        finally:
            self._open.discard(id(node))

    def _at(self, path: KeyPath, key: str | int, node: yaml.Node) -> KeyPath:
        child = (*path, key)
        self.lines[child] = node.start_mark.line + 1
        return child

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != MERGE_TAG:
                if key_node.value in seen:
                    self.error(self._at(path, key_node.value, key_node), "duplicate key")
                seen.add(key_node.value)
        try:
            self._constructor.flatten_mapping(node)  # merged keys come first; later keys win
        except yaml.MarkedYAMLError as exc:
            self.error(path, exc.problem or "cannot merge this mapping")
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.error(self._at(path, "?", key_node), "a key must be plain text")
                continue
            child = self._at(path, key_node.value, key_node)
            result[key_node.value] = self.load(value_node, child)
        return result

    def _scalar(self, node: yaml.Node, path: KeyPath) -> Any:
        self.raw[path] = str(node.value)
        if node.tag == TIMESTAMP_TAG:
            return node.value
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            self.error(path, exc.problem or "cannot read this value")
            return None


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return f"the number {value}"
    return repr(value)


def _mapping(doc: _Document, value: Any, path: KeyPath, what: str = "a mapping") -> dict | None:
    if isinstance(value, dict):
        return value
    doc.error(path, f"expected {what}, got {_describe(value)}")
    return None


def _keys(
    doc: _Document, data: Mapping, path: KeyPath, known: Collection[str], required: Collection[str]
) -> None:
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            doc.error((*path, key), f"unknown key; {hint}expected one of {', '.join(known)}")
    for key in required:
        if key not in data:
            doc.error(path, f"missing required key {key!r}")


def _text(doc: _Document, value: Any, path: KeyPath, what: str = "text") -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return doc.raw.get(path, str(value))
    doc.error(path, f"expected {what}, got {_describe(value)}")
    return None


def _choice(doc: _Document, value: Any, path: KeyPath, options: Collection[str]) -> str | None:
    text = _text(doc, value, path)
    if text is not None and text not in options:
        doc.error(path, f"{text!r} is not one of {', '.join(options)}")
        return None
    return text


def _flag(doc: _Document, value: Any, path: KeyPath) -> bool | None:
    if isinstance(value, bool):
        return value
    doc.error(path, f"expected true or false, got {_describe(value)}")
    return None


def _duration(doc: _Document, value: Any, path: KeyPath) -> timedelta | None:
    if not isinstance(value, str):
        doc.error(path, f"expected a duration like 24h, 90m or 1h30m, got {_describe(value)}")
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        doc.error(path, str(exc))
        return None


def _moment(doc: _Document, value: Any, path: KeyPath) -> datetime | None:
    text = _text(doc, value, path, "an ISO 8601 date-time")
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        doc.error(path, f"{text!r} is not an ISO 8601 date-time like 2030-01-01T00:00:00Z")
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # no zone: UTC


def _severities(doc: _Document, value: Any, path: KeyPath) -> tuple[Severity, ...]:
    if isinstance(value, str):
        return (Severity(v),) if (v := _choice(doc, value, path, SEVERITIES)) else ()
    if not isinstance(value, list) or not value:
        doc.error(path, f"expected a severity or a non-empty list of them, got {_describe(value)}")
        return ()
    found = [_choice(doc, item, (*path, i), SEVERITIES) for i, item in enumerate(value)]
    return tuple(Severity(v) for v in found if v)


def _match(doc: _Document, value: Any, path: KeyPath, accounts: AccountMap | None) -> Match | None:
    data = _mapping(doc, value, path)
    if data is None:
        return None
    before = len(doc.found)
    _keys(doc, data, path, MATCH_KEYS, ())
    fields: dict[str, Any] = {}
    for key in ("source", "detail_type", "region", "alarm_name", "resource"):
        if key in data:
            what = "a glob pattern (text)" if key in ("alarm_name", "resource") else "text"
            fields[key] = _text(doc, data[key], (*path, key), what)
    if "environment" in data:
        fields["environment"] = _choice(
            doc, data["environment"], (*path, "environment"), ENVIRONMENTS
        )
    if "account" in data:
        fields["account"] = account = _text(doc, data["account"], (*path, "account"))
        known = accounts is None or accounts.find(account or "") is not None
        if account is not None and not (ACCOUNT_ID.fullmatch(account) or known):
            doc.error((*path, "account"), f"{account!r} is not a configured account name or id")
    if "severity" in data:
        fields["severity"] = _severities(doc, data["severity"], (*path, "severity"))
    if (
        "labels" in data
        and (labels := _mapping(doc, data["labels"], (*path, "labels"))) is not None
    ):
        globs = {
            k: _text(doc, v, (*path, "labels", k), "a glob pattern (text)")
            for k, v in labels.items()
        }
        fields["labels"] = tuple(globs.items())
    return Match(**fields) if len(doc.found) == before else None


def _account(doc: _Document, account_id: str, value: Any, path: KeyPath) -> Account | None:
    before = len(doc.found)
    if not ACCOUNT_ID.fullmatch(account_id):
        doc.error(path, f"{account_id!r} is not an AWS account id (12 digits)")
    data = _mapping(doc, value, path, "a mapping with name and environment")
    if data is None:
        return None
    _keys(doc, data, path, ACCOUNT_KEYS, ("name", "environment"))
    name = _text(doc, data.get("name", ""), (*path, "name"))
    if "name" in data and name == "":
        doc.error((*path, "name"), "must not be empty")
    environment = _choice(
        doc, data.get("environment", "prod"), (*path, "environment"), ENVIRONMENTS
    )
    team = _text(doc, data.get("team", ""), (*path, "team"))
    role_arn = _text(doc, data.get("role_arn", ""), (*path, "role_arn"))
    if role_arn and not ROLE_ARN.fullmatch(role_arn):
        doc.error((*path, "role_arn"), f"{role_arn!r} is not an IAM role ARN")
    if len(doc.found) > before or not (name and environment):
        return None
    return Account(account_id, name, environment, team or "", role_arn or "")


def _accounts(doc: _Document, value: Any, default_environment: str) -> AccountMap:
    data = _mapping(doc, value, ("accounts",), "a mapping of account id to account") or {}
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


def _rule(doc: _Document, value: Any, path: KeyPath, accounts: AccountMap) -> Rule | None:
    data = _mapping(doc, value, path)
    if data is None:
        return None
    before = len(doc.found)
    if "match" not in data:
        doc.error(path, "missing required key 'match'")
    match = _match(doc, data["match"], (*path, "match"), accounts) if "match" in data else None
    fields: dict[str, Any] = {}
    if "priority" in data:
        fields["priority"] = _choice(doc, data["priority"], (*path, "priority"), PRIORITIES)
    for key in ("jira_project", "slack_channel", "runbook"):
        if key in data:
            fields[key] = _text(doc, data[key], (*path, key))
    for key in ("ticket", "auto"):
        if key in data:
            fields[key] = _flag(doc, data[key], (*path, key))
    project = fields.get("jira_project")
    if project is not None and not JIRA_PROJECT_KEY.fullmatch(project):
        doc.error((*path, "jira_project"), f"{project!r} is not a Jira project key, like SEC")
    if fields.get("auto") and not fields.get("runbook"):
        doc.error((*path, "auto"), "true needs a runbook to run")
    if match is None or len(doc.found) > before:
        return None
    extra = {k: v for k, v in data.items() if k not in RULE_KEYS}
    return Rule(match=match, extra=extra, **fields)


def _priorities(doc: _Document, value: Any) -> dict[str, dict[Severity, str]]:
    result = {env: dict(matrix) for env, matrix in DEFAULT_PRIORITIES.items()}
    data = _mapping(doc, value, ("priorities",), "a mapping of environment to priorities") or {}
    for env in sorted(data, key=lambda name: name in PRIORITY_FALLBACK):  # prod, nonprod first
        path: KeyPath = ("priorities", env)
        if _choice(doc, env, path, ENVIRONMENTS) is None:
            continue
        merged = dict(result.get(env) or result[PRIORITY_FALLBACK[env]])
        matrix = _mapping(doc, data[env], path, "a mapping of severity to priority") or {}
        for key, item in matrix.items():
            # Both {critical: P1} and {P1: critical} (or {P1: [critical, high]}) are accepted.
            if key in PRIORITIES and (found := _severities(doc, item, (*path, key))):
                merged.update(dict.fromkeys(found, key))
            elif (
                key not in PRIORITIES
                and _choice(doc, key, (*path, key), SEVERITIES)
                and (priority := _choice(doc, item, (*path, key), PRIORITIES))
            ):
                merged[Severity(key)] = priority
        result[env] = merged
    return result


def _silence(doc: _Document, value: Any, index: int, accounts: AccountMap) -> Silence | None:
    path: KeyPath = ("silences", index)
    data = _mapping(doc, value, path)
    if data is None:
        return None
    before = len(doc.found)
    _keys(doc, data, path, SILENCE_KEYS, ("match", "until"))
    match = _match(doc, data["match"], (*path, "match"), accounts) if "match" in data else None
    ends_at = _moment(doc, data["until"], (*path, "until")) if "until" in data else None
    starts_at = _moment(doc, data["starts"], (*path, "starts")) if "starts" in data else None
    reason = _text(doc, data.get("reason", ""), (*path, "reason"))
    if starts_at and ends_at and ends_at <= starts_at:
        doc.error((*path, "until"), "must be later than starts")
    if match is None or ends_at is None or len(doc.found) > before:
        return None
    return Silence(f"config-{index}", match, starts_at, ends_at, reason or "", "config")


def _flapping(doc: _Document, value: Any) -> FlapPolicy:
    data = _mapping(doc, value, ("flapping",)) or {}
    _keys(doc, data, ("flapping",), FLAPPING_KEYS, ())
    policy = FlapPolicy()
    changes = data.get("changes", policy.changes)
    if isinstance(changes, bool) or not isinstance(changes, int) or changes < 1:
        doc.error(
            ("flapping", "changes"), f"expected a whole number >= 1, got {_describe(changes)}"
        )
        changes = policy.changes
    window = _duration(doc, data["window"], ("flapping", "window")) if "window" in data else None
    if window is not None and window <= timedelta(0):
        doc.error(("flapping", "window"), "must be longer than 0s")
    return FlapPolicy(changes, window or policy.window)


def _slack_roles(doc: _Document, value: Any) -> dict[str, tuple[str, ...]]:
    data = _mapping(doc, value, ("slack",)) or {}
    _keys(doc, data, ("slack",), SLACK_KEYS, ())
    roles = (
        _mapping(doc, data.get("roles", {}), ("slack", "roles"), "a mapping of role to ids") or {}
    )
    result: dict[str, tuple[str, ...]] = {}
    for role, ids in roles.items():
        path: KeyPath = ("slack", "roles", role)
        if _choice(doc, role, path, SLACK_ROLES) is None:
            continue
        items = ids if isinstance(ids, list) else [ids]
        found = [
            _text(doc, item, (*path, i), "a Slack user or group id") for i, item in enumerate(items)
        ]
        result[role] = tuple(item for item in found if item)
    return result


def _policy(doc: _Document, data: Any) -> Policy:
    root = _mapping(doc, {} if data is None else data, (), "a mapping of settings")
    if root is None:
        return Policy.default()
    given = {key: value for key, value in root.items() if value is not None}
    default_environment = DEFAULT_ENVIRONMENT
    if "default_environment" in given:
        path: KeyPath = ("default_environment",)
        default_environment = (
            _choice(doc, given["default_environment"], path, ENVIRONMENTS) or DEFAULT_ENVIRONMENT
        )
    accounts = _accounts(doc, given.get("accounts", {}), default_environment)
    rules = given.get("rules", [])
    if not isinstance(rules, list):
        doc.error(("rules",), f"expected a list of rules, got {_describe(rules)}")
        rules = []
    silences = given.get("silences", [])
    if not isinstance(silences, list):
        doc.error(("silences",), f"expected a list of silences, got {_describe(silences)}")
        silences = []
    reopen = (
        _duration(doc, given["reopen_window"], ("reopen_window",))
        if "reopen_window" in given
        else None
    )
    return Policy(
        accounts=accounts,
        rules=tuple(r for i, v in enumerate(rules) if (r := _rule(doc, v, ("rules", i), accounts))),
        priorities=_priorities(doc, given.get("priorities", {})),
        silences=tuple(s for i, v in enumerate(silences) if (s := _silence(doc, v, i, accounts))),
        reopen_window=reopen if reopen is not None else timedelta(hours=24),
        flapping=_flapping(doc, given.get("flapping", {})),
        slack_roles=_slack_roles(doc, given.get("slack", {})),
        extra={key: value for key, value in root.items() if key not in TOP_LEVEL_KEYS},
    )


def _syntax_error(source: str, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if not isinstance(exc, yaml.MarkedYAMLError) or mark is None:
        return f"{source}: {exc}"
    message = f"{source}:{mark.line + 1}:{mark.column + 1}: {exc.problem or exc.context}"
    if exc.problem and exc.context:
        at = f" at line {exc.context_mark.line + 1}" if exc.context_mark else ""
        message += f" ({exc.context}{at})"
    return message


def parse_policy(text: str, source: str = "<string>") -> Policy:
    """Return the policy in a YAML text; raise ConfigError listing every problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError([_syntax_error(source, exc)]) from None
    doc = _Document(source)
    policy = _policy(doc, doc.load(node) if node is not None else None)
    if doc.found:
        raise ConfigError(doc.errors)
    return policy


def load_policy(path: Path, *, required: bool = False) -> Policy:
    """Return the policy in a YAML file, or the default one when the file is absent.

    With ``required`` a missing file is an error. Raises ConfigError naming
    the file, line and key of every problem.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError([f"{path}: configuration file not found"]) from None
        return Policy.default()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read the configuration file: {exc}"]) from None
    return parse_policy(text, str(path))


def match_from_mapping(
    data: Mapping[str, Any], accounts: AccountMap | None = None, source: str = "match"
) -> Match:
    """Return the Match a YAML-style mapping describes; raise ConfigError if it is invalid."""
    doc = _Document(source, with_lines=False)
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
