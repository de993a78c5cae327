"""Who uses a secret? The domains above secrets answer, through checks they register here
at start-up (STYLE: imports point down, even for "who uses me?"): secrets never import
providers or roles, yet refuses to delete what they name.

A check takes the org and some of its secrets and answers, per secret id, the users it
knows of as ``(id, name)`` pairs. ``delete`` puts the ids in ``details`` of the 409
``secret_in_use`` (one list per kind: ``details.providers``, ``details.roles``); the
console names them in its confirm dialog.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from evershell.secrets.models import Secret

User = tuple[str, str]  # (id, name)
UsageCheck = Callable[[str, Sequence[Secret]], dict[str, list[User]]]

# kind (the plural the details key is spelled with) -> check; kinds in registration order
_checks: dict[str, UsageCheck] = {}


def register(kind: str, check: UsageCheck) -> None:
    """Let ``kind`` (``providers``, ``roles``, …) say which secrets it uses. Registering
    a kind again replaces its check (each app built in one process registers anew)."""
    _checks[kind] = check


def registered() -> list[str]:
    return list(_checks)


@dataclass
class Usage:
    """The users of one secret, by kind; empty kinds are left out."""

    by_kind: dict[str, list[User]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(self.by_kind.values())

    def ids(self) -> dict[str, list[str]]:
        return {kind: [user_id for user_id, _name in users]
                for kind, users in self.by_kind.items()}

    def describe(self) -> str:
        """``role "triage" and provider "Claude"``: for messages and confirm dialogs."""
        parts = []
        for kind, users in self.by_kind.items():
            singular = kind[:-1] if kind.endswith("s") else kind
            noun = singular if len(users) == 1 else kind
            parts.append(f"{noun} " + ", ".join(f"“{name}”" for _id, name in users))
        return " and ".join(parts)


def usage_of(org_id: str, secrets: Sequence[Secret]) -> dict[str, Usage]:
    """Every registered kind's users of each of ``secrets``, by secret id (one call per
    kind for the whole list, so a list page costs a query or two per kind)."""
    result = {secret.id: Usage() for secret in secrets}
    if not secrets:
        return result
    for kind, check in _checks.items():
        for secret_id, users in check(org_id, secrets).items():
            if users and secret_id in result:
                result[secret_id].by_kind[kind] = sorted(users, key=lambda u: u[1])
    return result
