"""AWS plumbing shared by the domains that call AWS: cross-account sessions."""

from opsbot.aws.sessions import CLIENT_CONFIG, account_session, session_name

__all__ = ["CLIENT_CONFIG", "account_session", "session_name"]
