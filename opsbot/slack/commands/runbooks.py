"""``/ops runbooks``, ``run``, ``runs``, ``show run``, ``approve``, ``deny``, ``cancel``.

``run <runbook> [param=value …] [on <incident>] [dry]`` requests a run (or,
with ``dry``, shows what would be sent and sends nothing); the card's
suggested-runbook button (``runbook_run``) shows that preview with the
command that confirms it, and ``run_confirm`` (value ``<runbook>@<incident>``)
requests it. ``run_approve`` and ``run_deny`` carry the run id. The runbook
operations come from the port's ``runbooks()`` (``opsbot.runbooks.desk``).

Approval requests of any kind (run, patch window, CodePipeline) are ``A<n>``:
``approve A7`` and ``deny A7 [reason]``, and the request message's buttons
``approval_approve`` and ``approval_deny`` carry ``7`` (Deny opens a modal for
the reason: ``opsbot.slack.dispatch``). ``approve 7`` still means run 7.
"""

from __future__ import annotations

from typing import Any

from opsbot.slack.commands.base import (
    CommandTable,
    Handler,
    Reply,
    Request,
    RunbookOps,
    Usage,
    incident_id,
    number,
)


def _desk(req: Request) -> RunbookOps:
    return req.ops.runbooks()


def run_id(text: str) -> int:
    """Return the run id in ``7`` or ``#7``; raise Usage otherwise."""
    return number(text, "a run number")


def parse_run(words: list[str]) -> tuple[str, dict[str, str], int | None, bool]:
    """Return (runbook, parameters, incident id, dry run) from the words after ``run``."""
    if not words:
        raise Usage("Say which runbook.")
    name, rest = words[0], list(words[1:])
    dry = bool(rest) and rest[-1].lower() in ("dry", "--dry-run")
    if dry:
        rest.pop()
    incident = None
    if len(rest) >= 2 and rest[-2].lower() == "on":
        incident = incident_id(rest[-1])
        rest = rest[:-2]
    params: dict[str, str] = {}
    for word in rest:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise Usage(f"`{word}` is not a parameter: write name=value.")
        params[key] = value
    return name, params, incident, dry


def list_runbooks(req: Request) -> Reply:
    """List the runbooks."""
    return Reply("\n".join(_desk(req).catalogue()) or "No runbooks.")


def run(req: Request) -> Reply:
    """Request a runbook run (or preview it with ``dry``)."""
    name, params, incident, dry = parse_run(req.args)
    text = _desk(req).request(name, params, incident, req.user.actor, dry_run=dry)
    return Reply(text, public=not dry)


def list_runs(req: Request) -> Reply:
    """List recent runs: all, mine or running."""
    which = req.args[0].lower() if req.args else "all"
    if which not in ("all", "mine", "running"):
        raise Usage(f"`{which}` is not mine or running.")
    return Reply("\n".join(_desk(req).runs(which, req.user.actor)) or "No runs.")


def approval_id(text: str) -> int | None:
    """Return the approval id in ``A7`` or ``a7``, or None for a run id."""
    if text[:1] in ("A", "a"):
        return number(text[1:], "an approval number like A7")
    return None


def approve(req: Request) -> Reply:
    """Approve a run, or an approval request (``A7``)."""
    if not req.args:
        raise Usage("Say which run or approval.")
    found = approval_id(req.args[0])
    if found is not None:
        return Reply(_desk(req).decide(found, req.user.actor, "approve", ""), public=True)
    return Reply(_desk(req).approve(run_id(req.args[0]), req.user.actor), public=True)


def deny(req: Request) -> Reply:
    """Deny a run or an approval request (``A7``), with an optional reason."""
    if not req.args:
        raise Usage("Say which run or approval.")
    reason = " ".join(req.args[1:])
    found = approval_id(req.args[0])
    if found is not None:
        return Reply(_desk(req).decide(found, req.user.actor, "deny", reason), public=True)
    return Reply(_desk(req).deny(run_id(req.args[0]), req.user.actor, reason), public=True)


def cancel(req: Request) -> Reply:
    """Cancel a run."""
    if not req.args:
        raise Usage("Say which run.")
    return Reply(_desk(req).cancel(run_id(req.args[0]), req.user.actor), public=True)


def suggested(req: Request) -> Reply:
    """Preview an incident's suggested runbook and say how to confirm it (card button)."""
    number = incident_id(req.value)
    found: Any = req.ops.incident(number)
    name = ((found.route or {}).get("runbook") if found is not None else None) or ""
    if not name:
        raise Usage(f"Incident {number} has no suggested runbook.")
    text = _desk(req).request(name, {}, number, req.user.actor, dry_run=True)
    return Reply(f"{text}\nConfirm with `/ops run {name} on {number}`.")


def confirm(req: Request) -> Reply:
    """Request the run a confirmation button names (``<runbook>@<incident>``)."""
    name, _, number = req.value.partition("@")
    text = _desk(req).request(name, {}, incident_id(number), req.user.actor)
    return Reply(text, public=True)


def _show_with_runs(show_incident: Handler) -> Handler:
    def show(req: Request) -> Reply:
        if req.args and req.args[0].lower() == "run":
            if len(req.args) < 2:
                raise Usage("Say which run.")
            return Reply(_desk(req).show(run_id(req.args[1])))
        return show_incident(req)

    return show


def register(table: CommandTable) -> None:
    """Add the runbook commands and buttons (``show run`` joins the incidents' ``show``)."""
    cmd = table.command
    cmd("runbooks", usage="runbooks", summary="list the runbooks")(list_runbooks)
    cmd(
        "run", usage="run <runbook> [param=value …] [on <incident>] [dry]",
        summary="run a runbook (dry: preview only)", action="run", changes=True,
    )(run)  # fmt: skip
    cmd("runs", usage="runs [mine|running]", summary="recent runs; details: show run <run>")(
        list_runs
    )
    cmd("approve", usage="approve <run>|A<approval>", summary="approve a run or a request",
        action="approve", changes=True)(approve)  # fmt: skip
    cmd("deny", usage="deny <run>|A<approval> [reason]", summary="deny a run or a request",
        action="deny", changes=True)(deny)  # fmt: skip
    cmd("cancel", usage="cancel <run>", summary="cancel a run", action="run",
        changes=True)(cancel)  # fmt: skip
    if "show" in table.commands:
        shown = table.commands["show"]
        cmd("show", usage=shown.usage, summary=shown.summary,
            action=shown.action)(_show_with_runs(shown.handler))  # fmt: skip
    table.button("runbook_run", action="run")(suggested)
    table.button("run_confirm", action="run")(confirm)
    table.button("run_approve", action="approve")(approve_button)
    table.button("run_deny", action="deny")(deny_button)
    table.button("approval_approve", action="approve")(approve_request_button)
    table.button("approval_deny", action="deny")(deny_request_button)


def approve_button(req: Request) -> Reply:
    """Approve the run a button names."""
    return Reply(_desk(req).approve(run_id(req.value), req.user.actor), public=True)


def deny_button(req: Request) -> Reply:
    """Deny the run a button names."""
    return Reply(_desk(req).deny(run_id(req.value), req.user.actor, ""), public=True)


def approve_request_button(req: Request) -> Reply:
    """Approve the approval request a button names."""
    found = number(req.value, "an approval number")
    return Reply(_desk(req).decide(found, req.user.actor, "approve", ""), public=True)


def deny_request_button(req: Request) -> Reply:
    """Deny the approval request a button (or its reason modal) names; the rest is the reason."""
    found = number(req.value, "an approval number")
    reason = " ".join(req.args[1:])
    return Reply(_desk(req).decide(found, req.user.actor, "deny", reason), public=True)
