"""A role's history: its versions, the diff between two, and "explain" — what a
caps.yaml (saved or a draft) compiles to and what it would change."""

from __future__ import annotations

import difflib
from typing import Any

import sqlalchemy as sa

from evershell.access.principal import Principal
from evershell.core.errors import ErrorCode, EvershellError, validation_error
from evershell.core.inputs import version_number
from evershell.core.pagination import paginate
from evershell.extensions import db
from evershell.roles import caps
from evershell.roles.capset import CapabilitySet, diff
from evershell.roles.models import RoleVersion
from evershell.roles.rules import FIELDS
from evershell.roles.services import RoleState, _pack_ids, _role

# Fields compared one value against the other; the long texts get a unified diff.
_SCALAR_FIELDS = [f for f in FIELDS if f not in ("system_prompt", "capabilities")]


def _version_not_found(role_id: str, number: Any) -> EvershellError:
    return EvershellError(ErrorCode.VERSION_NOT_FOUND,
                          f"Role {role_id!r} has no version {number}.", 404,
                          {"role_id": role_id, "version": str(number)})


def _number(role_id: str, number: Any) -> int:
    """A version number from the URL: digits only (``1``, not ``v1`` or ``-1``)."""
    wanted = version_number(number)
    if wanted is None:
        raise _version_not_found(role_id, number)
    return wanted


def list_versions(actor: Principal, role_id: str, limit: int, cursor: str | None) -> dict:
    """A role's versions, newest first (ids are time-sortable, numbers increase)."""
    role = _role(actor.org_id, role_id)
    page = paginate(db.session, sa.select(RoleVersion).where(RoleVersion.role_id == role.id),
                    RoleVersion.id, limit, cursor)
    packs = _pack_ids([v.id for v in page["data"]])
    return {"data": [RoleState(role, v, packs[v.id]) for v in page["data"]],
            "next_cursor": page["next_cursor"]}


def get_version(actor: Principal, role_id: str, number: Any) -> RoleState:
    """Version ``number`` of a role (404 ``version_not_found`` when it has none)."""
    role = _role(actor.org_id, role_id)
    wanted = _number(role_id, number)
    version = db.session.scalar(sa.select(RoleVersion).where(
        RoleVersion.role_id == role.id, RoleVersion.number == wanted))
    if version is None:
        raise _version_not_found(role_id, number)
    return RoleState(role, version, _pack_ids([version.id])[version.id])


def _text_diff(before: str, after: str, label: str, old: int, new: int) -> str:
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(),
                                 f"v{old}/{label}", f"v{new}/{label}", lineterm="")
    return "\n".join(lines)


def diff_versions(actor: Principal, role_id: str, number: Any,
                  against: Any | None = None) -> dict[str, Any]:
    """What changed from version ``against`` (default: the one before) to ``number``:
    the compiled capability sets entry by entry, the other fields value by value, and
    unified diffs of caps.yaml and the system prompt."""
    new = get_version(actor, role_id, number)
    if against is None:
        if new.version.number == 1:
            raise validation_error({"against": [
                "Version 1 has no version before it; name one to compare with."]})
        against = new.version.number - 1
    old = get_version(actor, role_id, against)
    before, after = old.values(), new.values()
    o, n = old.version.number, new.version.number
    return {
        "role_id": new.role.id, "from_version": o, "to_version": n,
        "fields": [{"field": f, "from": before[f], "to": after[f]}
                   for f in _SCALAR_FIELDS if before[f] != after[f]],
        "capabilities": diff(old.version.capabilities, new.version.capabilities),
        "capabilities_yaml_diff": _text_diff(before["capabilities"], after["capabilities"],
                                             "caps.yaml", o, n),
        "system_prompt_diff": _text_diff(before["system_prompt"], after["system_prompt"],
                                         "system_prompt", o, n),
    }


def explain_text(text: str | None, basis: CapabilitySet | dict | None = None) \
        -> dict[str, Any]:
    """Compile a draft caps.yaml without saving it (422 ``invalid_capabilities`` when it
    does not compile); with ``basis``, also what it would change relative to it."""
    result = caps.explain(text)
    result["changes"] = diff(basis, result["capabilities"]) if basis is not None else None
    return result


def explain(actor: Principal, role_id: str, draft: str | None = None,
            number: Any | None = None) -> dict[str, Any]:
    """Explain a saved version's capabilities (the current one unless ``number`` is
    given), or a ``draft`` caps.yaml together with its changes from that version."""
    state = get_version(actor, role_id, number) if number is not None else \
        get_version(actor, role_id, _role(actor.org_id, role_id).current_version)
    stored = state.version.capabilities
    if draft is not None:
        result = explain_text(draft, stored)
        source = "draft"
    else:
        result = caps.describe(CapabilitySet.from_dict(stored),
                               _defaults_of(state.version.capabilities_yaml))
        result["changes"] = None
        source = "version"
    return {"role_id": state.role.id, "version": state.version.number, "source": source,
            **result}


def _defaults_of(text: str) -> tuple[str, ...]:
    """Which settings of a saved caps.yaml are defaults; the stored compiled set stays the
    truth, so a text today's compiler would refuse simply reports none."""
    try:
        return caps.compile_with_defaults(text).defaulted
    except caps.InvalidCapabilities:
        return ()
