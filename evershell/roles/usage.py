"""Who still uses a role: domains above roles (workspaces) register a check at start-up,
so roles can refuse a delete (409 ``role_in_use``) without importing them."""

from __future__ import annotations

from collections.abc import Callable

# kind (e.g. "workspaces") → check(org_id, role_id) → ids of the users, [] when none.
_checks: dict[str, Callable[[str, str], list[str]]] = {}


def register(kind: str, check: Callable[[str, str], list[str]]) -> None:
    _checks[kind] = check


def users_of(org_id: str, role_id: str) -> dict[str, list[str]]:
    """Each registered kind's users of the role; only kinds with any."""
    found = {kind: check(org_id, role_id) for kind, check in _checks.items()}
    return {kind: ids for kind, ids in found.items() if ids}
