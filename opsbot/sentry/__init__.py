"""Sentry → opsbot: ``POST /sentry/webhook`` (integration-platform webhooks, signed)."""

from opsbot.sentry.webhook import register, signature_valid

__all__ = ["register", "signature_valid"]
