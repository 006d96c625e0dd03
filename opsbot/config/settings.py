"""Typed settings from ``OPSBOT_*`` environment variables (endpoints, secrets and knobs)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from opsbot.config.yamldoc import ConfigError
from opsbot.core.durations import parse_duration

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SNS_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]+")
RETENTIONS = (
    "retain_delivery_bodies",
    "retain_deliveries",
    "retain_alerts",
    "retain_outbox",
    "retain_slack_dedup",
    "retain_audit",
)
MIN_RETENTION = timedelta(hours=1)
S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class Settings(BaseSettings):
    """Endpoints, secrets and knobs, from ``OPSBOT_*`` environment variables.

    An empty variable counts as unset. Secrets are SecretStr: never shown in
    a repr, a log line or a validation error.
    """

    model_config = SettingsConfigDict(env_prefix="OPSBOT_", env_ignore_empty=True, extra="ignore")

    database_url: str = Field(default="sqlite:///opsbot.db", min_length=1)
    # Seconds: a frozen or locked database costs a request this long and a 503, never a hang.
    db_connect_timeout: float = Field(default=5.0, gt=0, le=300)
    db_statement_timeout: float = Field(default=5.0, gt=0, le=3600)
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
    # The Client Secret of the Sentry integration: POST /sentry/webhook is off (404) unless set.
    sentry_client_secret: SecretStr | None = None
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
    # text for a terminal; json for CloudWatch Logs Insights (one object a line)
    log_format: Literal["text", "json"] = "text"
    # Failed calls (not waits for a rate budget, Retry-After or credentials) before a row is
    # dead-lettered: ~27 h of the capped backoff, so OUTBOX_GIVE_UP_AFTER decides for outages.
    outbox_max_attempts: int = Field(default=150, ge=1)
    # A row that still fails this long after it was queued is dead-lettered (e.g. 24h, 90m).
    outbox_give_up_after: timedelta = timedelta(hours=24)
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    sqs_queue_urls: Annotated[list[str], NoDecode] = []
    sqs_trust_sns_envelope: bool = False
    # `opsbot worker` serves /healthz and /metrics here (loopback unless set, e.g. 0.0.0.0 on ECS).
    worker_host: str = Field(default="127.0.0.1", min_length=1)
    worker_port: int = Field(default=9102, ge=1, le=65535)
    # Heartbeats (issue 12): fetched with GET after each healthy worker cycle, every
    # heartbeat_interval seconds, each try bounded by heartbeat_timeout seconds.
    heartbeat_url: SecretStr | None = None
    heartbeat_interval: int = Field(default=60, ge=10, le=3600)
    heartbeat_timeout: float = Field(default=5.0, gt=0, le=60)
    # Housekeeping (issue 12): what `opsbot db prune` and the daily job keep, as durations
    # (7d, 36h; at least 1h). Bodies are emptied, the rest deleted; open incidents, their
    # alerts and the deliveries those reference are kept whatever their age.
    retain_delivery_bodies: timedelta = timedelta(days=7)
    retain_deliveries: timedelta = timedelta(days=90)
    retain_alerts: timedelta = timedelta(days=90)
    retain_outbox: timedelta = timedelta(days=7)
    retain_slack_dedup: timedelta = timedelta(days=2)
    # unset: the audit log is never pruned; set, it needs audit_export (entries are exported first)
    retain_audit: timedelta | None = None
    # where the audit log is exported as JSON lines: a directory, or s3://bucket/prefix
    audit_export: str | None = Field(default=None, validate_default=True)
    prune_batch_size: int = Field(default=1000, ge=1, le=10_000)
    # Sentry DSN: errors are reported there (with the sentry extra installed); off unless set.
    # Traces are configured by the standard OTEL_* variables (see opsbot.telemetry.tracing).
    sentry_dsn: SecretStr | None = None
    # Where people reach opsbot (e.g. https://opsbot.example.com): tickets and cards link to
    # the incident's dashboard page under it; unset, they carry no such link.
    public_url: str | None = None
    # A header the load balancer sets after its own sign-in (e.g. x-amzn-oidc-identity), read
    # by /ui as the reader's identity. Only safe behind an ALB that authenticates every request
    # and is the only way in; off unless set.
    ui_trusted_header: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,64}$")
    # The key of the dashboard's session cookies, the same on every replica (32+ characters);
    # unset: a key kept in data_dir/ui-session.key (shared by the processes of one host).
    ui_session_secret: SecretStr | None = Field(default=None, min_length=32)

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

    @field_validator("outbox_give_up_after", mode="before")
    @classmethod
    def _parse_give_up_after(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_duration(value)
        return value

    @field_validator("outbox_give_up_after")
    @classmethod
    def _check_give_up_after(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration, like 24h")
        return value

    @field_validator(*RETENTIONS, mode="before")
    @classmethod
    def _parse_retention(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_duration(value)
        return value

    @field_validator(*RETENTIONS)
    @classmethod
    def _check_retention(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value < MIN_RETENTION:
            raise ValueError("must be at least 1h, like 7d")
        return value

    @field_validator("heartbeat_url")
    @classmethod
    def _check_heartbeat_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("https://", "http://")):
            raise ValueError("is not an http(s) URL")
        return value

    @field_validator("audit_export")
    @classmethod
    def _export_before_prune(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("retain_audit") is not None and not value:
            raise ValueError(
                "must be set with OPSBOT_RETAIN_AUDIT: audit entries are exported before "
                "they are pruned (a directory, or s3://bucket/prefix)"
            )
        if value and value.startswith("s3://"):
            bucket = value[5:].split("/", 1)[0]
            if not S3_BUCKET.fullmatch(bucket):
                raise ValueError(f"{bucket[:70]!r} is not an S3 bucket name")
        return value or None

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @field_validator("log_format", mode="before")
    @classmethod
    def _check_log_format(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in LOG_FORMATS:
            return value.strip().lower()
        raise ValueError(f"{str(value)[:40]!r} is not one of {', '.join(LOG_FORMATS)}")

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

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # none of the characters that end a link in Jira's or Slack's markup (| [ ] < > { } " \)
        if not re.fullmatch(r'https?://[^\s/?#|\[\]<>{}"\\]+(/[^\s?#|\[\]<>{}"\\]*)?', value):
            raise ValueError(f"{value[:80]!r} is not an http(s) URL without query or fragment")
        return value.rstrip("/")

    @property
    def effective_cert_dir(self) -> Path:
        """The pinned SNS certificate directory: OPSBOT_SNS_CERT_DIR, else data_dir/sns-certs."""
        return self.sns_cert_dir if self.sns_cert_dir is not None else self.data_dir / "sns-certs"

    @property
    def jira_enabled(self) -> bool:
        """Whether Jira is configured: URL, token, and a project or service desk + request type."""
        desk = bool(self.jira_service_desk_id and self.jira_request_type_id)
        return bool(self.jira_url and self.jira_token and (self.jira_project or desk))

    def incident_page_url(self, incident_id: int) -> str | None:
        """Return the dashboard page of an incident under OPSBOT_PUBLIC_URL (None when unset)."""
        return f"{self.public_url}/ui/incidents/{incident_id}" if self.public_url else None

    @property
    def slack_enabled(self) -> bool:
        """Whether Slack is configured: bot token and signing secret."""
        return bool(self.slack_bot_token and self.slack_signing_secret)


def load_settings() -> Settings:
    """Return the settings from the environment; raise ConfigError naming each wrong variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"OPSBOT_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError([f"invalid settings: {problems}"]) from None
