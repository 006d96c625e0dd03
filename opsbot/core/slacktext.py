"""Untrusted text in Slack mrkdwn: escaped, so it can neither mention nor disguise a link.

Slack reads ``<!here>``, ``<@U123>`` and ``<https://x|label>`` in message
text as a mention or a link; an alarm's reason, an incident title or a Jira
name must show as written. Slack's own rule: escape ``&``, ``<`` and ``>``
(and nothing else) in text that is not opsbot's markup. opsbot's own links
are built with ``link``, its mentions (``<!subteam^S…>``) around escaped text.
"""

from __future__ import annotations

from urllib.parse import quote

__all__ = ["escape", "link"]


def escape(text: object) -> str:
    """Return text that Slack shows as written: ``&``, ``<``, ``>`` as entities."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, label: object) -> str:
    """Return opsbot's own link ``<url|label>``; the label is shown as written."""
    # A '|' or '>' in the URL would end it early; they are not legal in a URL unencoded.
    safe_url = quote(url, safe=":/?#[]@!$&'()*+,;=%~-._")
    return f"<{safe_url}|{escape(label)}>"
