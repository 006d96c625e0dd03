"""Cross-account boto3 sessions: the account's role from the account map, assumed with STS.

The SSM runbooks and the CodePipeline approvals both call AWS in the
estate's accounts this way: an account with a ``role_arn`` gets a session on
short-lived credentials from ``sts:AssumeRole`` (the role session name
carries the person on whose behalf the call is made); an account without
one uses boto3's own credential chain.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import boto3
from botocore.config import Config

from opsbot.core.accounts import AccountMap

CLIENT_CONFIG = Config(
    retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=20, user_agent_extra="opsbot"
)
SESSION_NAME_CHARS = re.compile(r"[^\w+=,.@-]", re.ASCII)
ROLE_SECONDS = 900


def account_session(
    accounts: AccountMap,
    account_id: str,
    region: str,
    requester: str,
    session_factory: Callable[..., boto3.session.Session] = boto3.session.Session,
) -> boto3.session.Session:
    """Return a boto3 session in an account and region (its role assumed when it has one)."""
    account = accounts.get(account_id)
    if account is None or not account.role_arn:
        return session_factory(region_name=region or None)
    base = session_factory(region_name=region or None)
    sts = base.client("sts", config=CLIENT_CONFIG)
    try:
        creds = sts.assume_role(
            RoleArn=account.role_arn,
            RoleSessionName=session_name(requester),
            DurationSeconds=ROLE_SECONDS,
        )["Credentials"]
    finally:
        sts.close()
    return session_factory(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region or None,
    )


def session_name(requester: str) -> str:
    """Return an STS role session name naming the requester (2-64 of [\\w+=,.@-])."""
    cleaned = SESSION_NAME_CHARS.sub("-", f"opsbot-{requester}")
    return cleaned[:64]
