"""The pieces every /ops command group uses: requests, replies, the command table.

Pure: handlers see opsbot through ``Request.ops`` (the ``Ops`` port, which
``opsbot.slack.dispatch`` implements over the database and ``opsbot.incidents.actions``),
so this package imports only the standard library and the core.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

INT64_MAX = 2**63 - 1


class Problem(Exception):
    """The request cannot be done; the message says why (the usage is added)."""


class Usage(Problem):
    """The words do not fit the command."""


@dataclass(frozen=True)
class SlackUser:
    """Who sent a command or pressed a button, with the role opsbot gives them."""

    id: str
    name: str
    role: str

    @property
    def actor(self) -> str:
        """Return how the audit log, the thread and Jira name this user."""
        return f"{self.name} ({self.id})"


@dataclass(frozen=True)
class Reply:
    """A short answer; ``public`` when it reports a change of shared state."""

    text: str
    public: bool = False


class Outcome(Protocol):
    """What an action did: ``changed`` is False when there was nothing to do."""

    @property
    def changed(self) -> bool: ...
    @property
    def message(self) -> str: ...


class RunbookOps(Protocol):
    """The runbook operations a request may ask for (``opsbot.runbooks.desk``)."""

    def catalogue(self) -> list[str]: ...
    def request(
        self, runbook: str, params: dict[str, str], incident_id: int | None, actor: str,
        *, dry_run: bool = False,
    ) -> str: ...  # fmt: skip
    def approve(self, run_id: int, actor: str) -> str: ...
    def deny(self, run_id: int, actor: str, reason: str) -> str: ...
    def decide(self, approval_id: int, actor: str, verdict: str, reason: str) -> str: ...
    def describe(self, approval_id: int) -> str: ...
    def cancel(self, run_id: int, actor: str) -> str: ...
    def runs(self, which: str, actor: str) -> list[str]: ...
    def show(self, run_id: int) -> str: ...


class Ops(Protocol):
    """What handlers may ask of opsbot, inside the request's one transaction."""

    def now(self) -> datetime: ...
    def incident(self, incident_id: int) -> Any | None: ...
    def incidents(
        self, statuses: Sequence[str], filters: dict[str, str], limit: int
    ) -> list[Any]: ...
    def acknowledge(self, incident_id: int, actor: str) -> Outcome: ...
    def resolve(self, incident_id: int, actor: str, note: str) -> Outcome: ...
    def assign(self, incident_id: int, owner: str, actor: str) -> Outcome: ...
    def silence(
        self, matcher: dict[str, Any], ends_at: datetime, reason: str, actor: str
    ) -> int: ...
    def silences(self) -> list[Any]: ...
    def end_silence(self, silence_id: int, actor: str) -> Outcome: ...
    def note(self, incident_id: int, text: str) -> None: ...
    def user_name(self, user_id: str) -> str: ...
    def runbooks(self) -> RunbookOps: ...


@dataclass
class Request:
    """One command or button press as a handler sees it."""

    ops: Ops
    user: SlackUser
    args: list[str]
    value: str = ""
    channel_id: str = ""
    table: CommandTable | None = None


Handler = Callable[[Request], Reply]


@dataclass(frozen=True)
class Command:
    """One /ops word: its handler, usage line, role action and whether it changes state."""

    word: str
    handler: Handler
    usage: str
    summary: str
    action: str = "view"
    changes: bool = False


@dataclass
class CommandTable:
    """The /ops words and the buttons, filled by each group's ``register``."""

    name: str = "/ops"
    commands: dict[str, Command] = field(default_factory=dict)
    buttons: dict[str, Command] = field(default_factory=dict)

    def command(
        self, word: str, *, usage: str, summary: str, action: str = "view", changes: bool = False
    ) -> Callable[[Handler], Handler]:
        """Register ``/ops <word>``; ``action`` names the role check, ``changes`` dedups it."""

        def add(handler: Handler) -> Handler:
            self.commands[word] = Command(word, handler, usage, summary, action, changes)
            return handler

        return add

    def button(self, action_id: str, *, action: str) -> Callable[[Handler], Handler]:
        """Register a button; its ``value`` reaches the handler as ``req.value``."""

        def add(handler: Handler) -> Handler:
            self.buttons[action_id] = Command(action_id, handler, "", "", action, True)
            return handler

        return add

    def usage(self, word: str) -> str:
        """Return the usage line of a command."""
        return f"Usage: `{self.name} {self.commands[word].usage}`"


def number(text: str, what: str = "number") -> int:
    """Return the id in ``5`` or ``#5`` (ASCII digits, 1 to 2**63-1); raise Usage otherwise."""
    digits = text[1:] if text.startswith("#") else text
    # isdigit() is true for "²" and full-width digits, which int() refuses or reads.
    if not (0 < len(digits) <= 19 and digits.isascii() and digits.isdigit()):
        raise Usage(f"`{text[:40]}` is not {what}.")
    value = int(digits)
    if not 0 < value <= INT64_MAX:
        raise Usage(f"`{text[:40]}` is not {what}.")
    return value


def incident_id(text: str) -> int:
    """Return the incident id in ``5`` or ``#5``; raise Usage otherwise."""
    return number(text, "an incident number")
