"""Slack roles: who may do what from Slack.

Roles, weakest first: viewer, operator, approver, admin. A user's role is the
strongest role that names the user's id or one of the user groups the user
belongs to; a user named nowhere is a viewer. Each action names the weakest
role allowed to perform it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

ROLES = ("viewer", "operator", "approver", "admin")
VIEWER = "viewer"

# The weakest role allowed to perform each action; unknown actions need admin.
REQUIRED_ROLE = {
    "view": "viewer",
    "acknowledge": "operator",
    "resolve": "operator",
    "assign": "operator",
    "silence": "operator",
    "unsilence": "operator",
    "run": "operator",
    "approve": "approver",
    "deny": "approver",
}


def rank(role: str) -> int:
    """Return the strength of a role (viewer 0 … admin 3)."""
    return ROLES.index(role)


def group_ids(roles: Mapping[str, Collection[str]]) -> set[str]:
    """Return the user-group ids (``S…``) that the role mapping names."""
    return {item for ids in roles.values() for item in ids if item.startswith("S")}


def role_of(user_id: str, groups: Collection[str], roles: Mapping[str, Collection[str]]) -> str:
    """Return the strongest role naming the user or one of the user's groups."""
    found = VIEWER
    for role, ids in roles.items():
        if role in ROLES and (user_id in ids or any(g in ids for g in groups)):
            found = role if rank(role) > rank(found) else found
    return found


def required_role(action: str) -> str:
    """Return the weakest role allowed to perform an action."""
    return REQUIRED_ROLE.get(action, "admin")


def allowed(role: str, action: str) -> bool:
    """Return whether a role may perform an action."""
    return rank(role) >= rank(required_role(action))
