"""How an audit entry reads to a person: who did it, to what, and what changed.

Names come from the log itself: an entry records the name or email of what it touched
at the time (``details.name``, ``details.email``). An entry that did not (a refusal, a
sign-in) borrows the name from the latest entry about the same target or API key, all
looked up in one query per page, so no other domain's tables are read.

Writers record a change as ``{field: [old, new]}`` in the details of update-like
actions; those read ``operator → member``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from evershell.audit import queries
from evershell.audit.models import AuditEntry

# Actions whose [old, new] pairs are changes (elsewhere a pair is just a two-item list).
_CHANGE_VERBS = ("update", "role_change", "rotate")
# Lists that are never [old, new] pairs, whatever the action.
_NOT_CHANGES = {"changed", "fields", "replaces", "scopes", "pack_ids"}
# Shown as the target's or actor's name, so not repeated among the facts; ids are noise.
_NOT_FACTS = {"name", "email", "code", "key_reference"}
_NOT_FACT_ENDINGS = ("_id", "_ids", "_hash")
MAX_VALUE_CHARS = 80


def plain(value: Any) -> str:
    """A detail value as text: JSON for lists and objects, empty for none (the CSV
    export writes its cells with this too)."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return str(value)


def _short(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(item, str | int) for item in value):
        text = ", ".join(str(item) for item in value)
    else:
        text = plain(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS - 1] + "…"
    return text or "—"


@dataclass(frozen=True)
class Change:
    field: str
    old: str
    new: str


@dataclass
class Described:
    """An entry with what the table shows besides its own columns."""

    entry: AuditEntry
    target_name: str | None = None
    api_key_name: str | None = None
    changes: list[Change] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)


def _is_pair(action: str, key: str, value: Any) -> bool:
    return (action.rsplit(".", 1)[-1] in _CHANGE_VERBS and key not in _NOT_CHANGES
            and isinstance(value, list) and len(value) == 2)


def name_in(details: dict | None) -> str | None:
    """The name (or email) an entry's details give their target: the new one when the
    entry renamed it."""
    for key in ("name", "email"):
        value = (details or {}).get(key)
        if isinstance(value, list) and len(value) == 2:
            value = value[1]
        if isinstance(value, str) and value:
            return value
    return None


def changes(action: str, details: dict | None) -> list[Change]:
    """The ``[old, new]`` pairs of an update-like entry, as changes."""
    return [Change(key.replace("_", " "), _short(value[0]), _short(value[1]))
            for key, value in (details or {}).items() if _is_pair(action, key, value)]


def facts(action: str, details: dict | None) -> list[tuple[str, str]]:
    """The other details worth a glance (``role member``, ``reason …``); ids and
    digests are left to the export."""
    return [(key.replace("_", " "), _short(value))
            for key, value in (details or {}).items()
            if key not in _NOT_FACTS and not key.endswith(_NOT_FACT_ENDINGS)
            and not _is_pair(action, key, value) and value not in (None, "", [], {})]


def describe(org_id: str, entries: list[AuditEntry]) -> list[Described]:
    """``entries`` with names, changes and facts, in one more query at most."""
    missing = {e.target_id for e in entries
               if e.target_id and not name_in(e.details)
               and not (e.target_type == "user" and e.target_id == e.actor_user_id)}
    missing |= {e.api_key_id for e in entries if e.api_key_id}
    known = {ref: name_in(details)
             for ref, details in queries.latest_details(org_id, missing).items()}
    described = []
    for entry in entries:
        target_name = name_in(entry.details) or known.get(entry.target_id)
        if entry.target_type == "user" and entry.target_id == entry.actor_user_id:
            target_name = target_name or entry.actor_email
        described.append(Described(
            entry=entry, target_name=target_name,
            api_key_name=known.get(entry.api_key_id) if entry.api_key_id else None,
            changes=changes(entry.action, entry.details),
            facts=facts(entry.action, entry.details)))
    return described
