"""Role actions: list, get, create, update (a new version), archive, unarchive, delete, and
what other domains ask of roles.

Rules held here (API and console only translate HTTP):

- Every create or update writes an immutable ``RoleVersion``; ``update`` writes version
  n+1 when anything differs from the current version (the name included). An update
  that changes nothing writes no version and no audit entry: retries and re-saved
  forms do not clutter the history, and ``version`` keeps meaning "content changed".
- caps.yaml must compile (422 ``invalid_capabilities`` with every problem's position);
  the compiled set is stored with the version, so later changes to defaults never
  change what an existing version grants.
- The provider must be in the org and not archived (404 ``provider_not_found``, 409
  ``provider_archived``) and serve the model (400 on ``model``); packs likewise (404
  ``pack_not_found``, 409 ``pack_archived``). These are checked when they change (a pack
  when it is added): editing the description of a role whose provider or pack was
  archived since still works.
- Names are unique in the org, archived roles included (409 ``name_taken``).
- Archived roles are read-only until unarchived (409 ``role_archived``).
- Ids of another org are 404 ``role_not_found``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from evershell.access.principal import Principal
from evershell.audit import services as audit
from evershell.core.db import utcnow
from evershell.core.errors import ErrorCode, EvershellError, validation_error
from evershell.core.pagination import paginate
from evershell.extensions import db
from evershell.roles import caps, rules, usage
from evershell.roles.capset import diff
from evershell.roles.models import Role, RoleVersion, RoleVersionPack
from evershell.secrets import usage as secret_usage


@dataclass
class RoleState:
    """A role with one of its versions (the current one, unless said otherwise)."""

    role: Role
    version: RoleVersion
    pack_ids: list[str]

    @property
    def current(self) -> bool:
        return self.version.number == self.role.current_version

    def values(self) -> dict[str, Any]:
        """The version's fields as a create or update names them."""
        v = self.version
        return {"name": v.name, "description": v.description, "provider_id": v.provider_id,
                "model": v.model, "system_prompt": v.system_prompt,
                "capabilities": v.capabilities_yaml, "pack_ids": list(self.pack_ids),
                "thinking_effort": v.thinking_effort,
                "max_continuations": v.max_continuations,
                "max_context_tokens": v.max_context_tokens}


def not_found(role_id: str) -> EvershellError:
    return EvershellError(ErrorCode.ROLE_NOT_FOUND,
                          f"Role {role_id!r} was not found in this organisation.", 404)


def _archived(role: Role) -> EvershellError:
    return EvershellError(ErrorCode.ROLE_ARCHIVED,
                          f"Role {role.name!r} is archived; unarchive it first.", 409,
                          {"role_id": role.id})


def _name_in_use(org_id: str, name: str, exclude_id: str | None = None) -> bool:
    query = sa.select(Role.id).where(Role.org_id == org_id, Role.name == name)
    if exclude_id is not None:
        query = query.where(Role.id != exclude_id)
    return db.session.scalar(query) is not None


def _name_taken(name: str) -> EvershellError:
    return EvershellError(ErrorCode.NAME_TAKEN, f"A role named {name!r} already exists.",
                          409, {"name": name})


def status_of(role: Role) -> str:
    """``active`` or ``archived``; ``deleted`` in the answer to a delete."""
    if sa.inspect(role).deleted or sa.inspect(role).was_deleted:
        return "deleted"
    return "archived" if role.archived_at is not None else "active"


# -- reads -------------------------------------------------------------------------------

def _role(org_id: str, role_id: str, for_update: bool = False) -> Role:
    query = sa.select(Role).where(Role.id == role_id, Role.org_id == org_id)
    role = db.session.scalar(query.with_for_update() if for_update else query)
    if role is None:
        raise not_found(role_id)
    return role


def _pack_ids(version_ids: list[str]) -> dict[str, list[str]]:
    rows = db.session.scalars(sa.select(RoleVersionPack).where(
        RoleVersionPack.role_version_id.in_(version_ids))
        .order_by(RoleVersionPack.position)).all() if version_ids else []
    result: dict[str, list[str]] = {vid: [] for vid in version_ids}
    for row in rows:
        result[row.role_version_id].append(row.pack_id)
    return result


def _current_with_packs(where) -> sa.Select:
    """Roles with their current version and its packs in order: one row per pack (one
    with a null pack for a version without packs)."""
    return (sa.select(Role, RoleVersion, RoleVersionPack.pack_id)
            .join(RoleVersion, sa.and_(RoleVersion.role_id == Role.id,
                                       RoleVersion.number == Role.current_version))
            .outerjoin(RoleVersionPack, RoleVersionPack.role_version_id == RoleVersion.id)
            .where(where).order_by(Role.id, RoleVersionPack.position))


def _assemble(rows) -> dict[str, RoleState]:
    found: dict[str, RoleState] = {}
    for role, version, pack_id in rows:
        state = found.get(role.id)
        if state is None:
            state = found[role.id] = RoleState(role, version, [])
        if pack_id is not None:
            state.pack_ids.append(pack_id)
    return found


def states(roles: list[Role]) -> list[RoleState]:
    """Each role with its current version and packs, in one query whatever the count.
    A role deleted between the read of ``roles`` and this one (each statement of a read
    sees what was committed when it ran) is left out."""
    if not roles:
        return []
    found = _assemble(db.session.execute(
        _current_with_packs(Role.id.in_([r.id for r in roles]))))
    return [found[r.id] for r in roles if r.id in found]


def list_roles(actor: Principal, limit: int, cursor: str | None,
               archived: bool = False) -> dict:
    """The org's roles, newest first: active ones, or only archived ones."""
    query = sa.select(Role).where(
        Role.org_id == actor.org_id,
        Role.archived_at.is_not(None) if archived else Role.archived_at.is_(None))
    page = paginate(db.session, query, Role.id, limit, cursor)
    return {"data": states(page["data"]), "next_cursor": page["next_cursor"]}


@functools.cache
def _one_role() -> sa.Select:
    """Built once: the statement object (and SQLAlchemy's compiled form of it) is
    reused by every read of one role, which costs more than the query itself."""
    return _current_with_packs(sa.and_(Role.id == sa.bindparam("role_id"),
                                       Role.org_id == sa.bindparam("org_id")))


def get(actor: Principal, role_id: str) -> RoleState:
    """One role of the caller's org with its current version and packs, archived or not
    (one statement)."""
    found = _assemble(db.session.execute(_one_role(),
                                         {"role_id": role_id, "org_id": actor.org_id}))
    if role_id not in found:
        raise not_found(role_id)
    return found[role_id]


def ensure_usable(org_id: str, role_id: str | None = None,
                  name: str | None = None) -> RoleState:
    """The role a task is about to run, by id or name: 404 ``role_not_found`` when not in
    ``org_id``, 409 ``role_archived`` when archived."""
    query = sa.select(Role).where(Role.org_id == org_id)
    query = query.where(Role.id == role_id) if role_id else query.where(Role.name == name)
    role = db.session.scalar(query)
    if role is None:
        raise not_found(role_id or name or "")
    if role.archived_at is not None:
        raise _archived(role)
    found = states([role])  # empty if the role was deleted since the statement above
    if not found:
        raise not_found(role_id or name or "")
    return found[0]


def roles_using_provider(org_id: str, provider_id: str) -> list[str]:
    """Ids of the org's roles with any version (current or past: a workspace may be pinned
    to it) on ``provider_id``; the providers service refuses a delete while any exist."""
    return list(db.session.scalars(
        sa.select(RoleVersion.role_id).where(RoleVersion.org_id == org_id,
                                             RoleVersion.provider_id == provider_id)
        .distinct().order_by(RoleVersion.role_id)))


def roles_using_pack(org_id: str, pack_id: str) -> list[str]:
    """Ids of the org's roles with any version that mounts ``pack_id`` (409
    ``pack_in_use`` on the pack's delete while any exist)."""
    return list(db.session.scalars(
        sa.select(RoleVersion.role_id).join(
            RoleVersionPack, RoleVersionPack.role_version_id == RoleVersion.id)
        .where(RoleVersionPack.org_id == org_id, RoleVersionPack.pack_id == pack_id)
        .distinct().order_by(RoleVersion.role_id)))


def _roles_using_secrets(org_id: str, secrets) -> dict[str, list[tuple[str, str]]]:
    """The secrets-usage check (see ``secrets.usage``): per secret id, the roles whose
    caps.yaml names the secret in ``env`` (``VAR: {secret: NAME}``).

    Only each role's current version counts, archived roles included (unarchiving one
    must find its secrets). Past versions do not: they are history, and what runs is the
    current version; a task's secrets are resolved by name when it runs, so a secret
    deleted since is a clear ``secret_not_found`` then, never a silent empty value.
    Deleted roles are gone with their versions.
    """
    by_name = {secret.name: secret.id for secret in secrets}
    query = (sa.select(Role.id, Role.name, RoleVersion.capabilities)
             .join(RoleVersion, sa.and_(RoleVersion.role_id == Role.id,
                                        RoleVersion.number == Role.current_version))
             .where(Role.org_id == org_id).order_by(Role.id))
    if len(by_name) <= 20:
        # A coarse filter in SQL ("_" matches any character: the check below is exact).
        query = query.where(sa.or_(*(RoleVersion.capabilities_yaml.contains(name)
                                     for name in by_name)))
    found: dict[str, list[tuple[str, str]]] = {}
    for role_id, role_name, compiled in db.session.execute(query):
        named = {source.get("secret") for source in (compiled or {}).get("env", {}).values()}
        for name in sorted(named & by_name.keys()):
            found.setdefault(by_name[name], []).append((role_id, role_name))
    return found


secret_usage.register("roles", _roles_using_secrets)


# -- writes ------------------------------------------------------------------------------

def _check_references(actor: Principal, values: dict[str, Any],
                      current: dict[str, Any]) -> None:
    """Provider and model when either is new; packs that are new (a pack archived
    after it was added does not block other edits)."""
    from evershell.packs import services as packs
    from evershell.providers import services as providers
    if "provider_id" in values or "model" in values:
        provider_id = values.get("provider_id", current.get("provider_id"))
        model = values.get("model", current.get("model"))
        provider = providers.ensure_usable(actor.org_id, provider_id)
        if model not in provider.models:
            raise validation_error({"model": [
                f"{provider.name} does not serve {model!r}; choose one of: "
                f"{', '.join(provider.models)}."]})
    for pack_id in values.get("pack_ids", []):
        if pack_id in current.get("pack_ids", []):
            continue
        pack = packs.get(actor, pack_id)  # 404 pack_not_found outside the org
        if packs.status_of(pack) == "archived":
            raise EvershellError(ErrorCode.PACK_ARCHIVED,
                                 f"Pack {pack.name!r} is archived; unarchive it or leave "
                                 "it out.", 409, {"pack_id": pack.id})


def _write_version(actor: Principal, role: Role, number: int, values: dict[str, Any],
                   compiled: dict[str, Any]) -> RoleState:
    version = RoleVersion(
        org_id=role.org_id, role_id=role.id, number=number, name=values["name"],
        description=values["description"], provider_id=values["provider_id"],
        model=values["model"], system_prompt=values["system_prompt"],
        capabilities_yaml=values["capabilities"], capabilities=compiled,
        thinking_effort=values["thinking_effort"],
        max_continuations=values["max_continuations"],
        max_context_tokens=values["max_context_tokens"], created_by_user_id=actor.user_id)
    db.session.add(version)
    db.session.flush()
    for position, pack_id in enumerate(values["pack_ids"]):
        db.session.add(RoleVersionPack(role_version_id=version.id, pack_id=pack_id,
                                       org_id=role.org_id, position=position))
    role.current_version = number
    return RoleState(role, version, list(values["pack_ids"]))


def _flush_name(org_id: str, name: str, exclude_id: str | None = None) -> None:
    """Flush in a savepoint: when a concurrent request took the name between our check
    and the write, the unique constraint answers and the caller gets ``name_taken``."""
    try:
        with db.session.begin_nested():
            db.session.flush()
    except sa.exc.IntegrityError:
        if _name_in_use(org_id, name, exclude_id):
            raise _name_taken(name) from None
        raise


def create(actor: Principal, given: Mapping[str, Any]) -> RoleState:
    """Create a role from ``given`` (name, provider_id and model required; the other
    fields default): version 1."""
    values, errors = rules.checked(given, required=True)
    if errors:
        raise validation_error(errors)
    compiled = caps.compile_caps(values["capabilities"]).to_dict()
    _check_references(actor, values, {})
    if _name_in_use(actor.org_id, values["name"]):
        raise _name_taken(values["name"])
    role = Role(org_id=actor.org_id, name=values["name"], current_version=1,
                created_by_user_id=actor.user_id)
    db.session.add(role)
    _flush_name(actor.org_id, values["name"])
    state = _write_version(actor, role, 1, values, compiled)
    audit.record(actor.org_id, "role.create", "role", role.id, {
        "name": role.name, "version": 1, "provider_id": values["provider_id"],
        "model": values["model"], "pack_ids": values["pack_ids"]})
    return state


def update(actor: Principal, role_id: str, given: Mapping[str, Any]) -> RoleState:
    """Write version n+1 from the current version and the fields ``given``; nothing is
    written when no field differs. Archived roles: 409 ``role_archived``."""
    role = _role(actor.org_id, role_id, for_update=True)
    if role.archived_at is not None:
        raise _archived(role)
    changes, errors = rules.checked(given, required=False)
    if errors:
        raise validation_error(errors)
    current = states([role])[0]
    before = current.values()
    after = {**before, **changes}
    changed = [f for f in rules.FIELDS if after[f] != before[f]]
    if not changed:
        return current
    # An unchanged caps.yaml keeps its stored compiled set, as written for that version.
    compiled = caps.compile_caps(after["capabilities"]).to_dict() \
        if "capabilities" in changed else current.version.capabilities
    _check_references(actor, {f: after[f] for f in changed}, before)
    if "name" in changed and _name_in_use(actor.org_id, after["name"], exclude_id=role.id):
        raise _name_taken(after["name"])
    role.name = after["name"]
    _flush_name(actor.org_id, role.name, exclude_id=role.id)
    number = role.current_version + 1
    state = _write_version(actor, role, number, after, compiled)
    details: dict[str, Any] = {"name": role.name, "version": number, "changed": changed}
    if "capabilities" in changed:
        delta = diff(current.version.capabilities, compiled)
        details["capabilities_diff"] = {k: len(v) for k, v in delta.items()}
    audit.record(actor.org_id, "role.update", "role", role.id, details)
    return state


def archive(actor: Principal, role_id: str) -> RoleState:
    """Archive: listed only with ``?archived=true``, refused to new tasks, read-only until
    unarchived. Archiving an archived role changes nothing."""
    role = _role(actor.org_id, role_id, for_update=True)
    if role.archived_at is None:
        role.archived_at = utcnow()
        audit.record(actor.org_id, "role.archive", "role", role.id, {"name": role.name})
    return states([role])[0]


def unarchive(actor: Principal, role_id: str) -> RoleState:
    """Make an archived role usable again (names stay unique, so this never clashes)."""
    role = _role(actor.org_id, role_id, for_update=True)
    if role.archived_at is not None:
        role.archived_at = None
        audit.record(actor.org_id, "role.unarchive", "role", role.id, {"name": role.name})
    return states([role])[0]


def delete(actor: Principal, role_id: str) -> RoleState:
    """Delete a role and all its versions; answers with it as it was. Refused (409
    ``role_in_use``) while a workspace that is not deleted uses it (``usage``)."""
    role = _role(actor.org_id, role_id, for_update=True)
    users = usage.users_of(actor.org_id, role.id)
    if users:
        named = "; ".join(f"{kind}: {', '.join(ids)}" for kind, ids in users.items())
        raise EvershellError(ErrorCode.ROLE_IN_USE,
                             f"Role {role.name!r} is in use ({named}); delete or fork "
                             f"those first, or archive the role instead.", 409, users)
    state = states([role])[0]
    db.session.delete(role)
    db.session.flush()
    audit.record(actor.org_id, "role.delete", "role", role.id,
                 {"name": role.name, "versions": role.current_version})
    return state
