"""What a workspace is made from: a usable role, its packs, and its snapshots.

``pack_status`` (SPEC §7) compares the packs the live directory materialised (recorded
as ``WorkspacePack`` rows: pack id, version, digest) with the packs of the role's
current version, each at its current version: ``current`` when they are the same set,
``stale`` otherwise, ``unknown`` when the workspace is not live.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from evershell.core.errors import ErrorCode, EvershellError, validation_error
from evershell.extensions import db
from evershell.packs.models import Pack, PackVersion
from evershell.packs.storage import store_for
from evershell.packs.versions import files_of
from evershell.providers import services as providers
from evershell.roles import services as roles
from evershell.roles.capset import CapabilitySet
from evershell.roles.models import Role, RoleVersion, RoleVersionPack
from evershell.workspaces.models import LIVE, Snapshot, Workspace, WorkspacePack


@dataclass(frozen=True)
class PackSource:
    """A pack version to materialise: what is recorded, and where its files are."""

    pack_id: str
    name: str
    version: int
    digest: str
    directory: Path


def usable_role(org_id: str, role_id: str | None, role_name: str | None) \
        -> roles.RoleState:
    """The role a workspace is provisioned from, as seed 001 validates it: exactly one
    of id and name (both must agree), not archived, its provider not archived, and a
    network policy this backend can enforce."""
    if not role_id and not role_name:
        raise validation_error({"role_id": ["Give role_id or role_name."]})
    state = roles.ensure_usable(org_id, role_id=role_id, name=None if role_id else role_name)
    if role_id and role_name and state.role.name != role_name:
        raise validation_error({"role_name": [
            f"role_id names the role {state.role.name!r}, not {role_name!r}."]})
    providers.ensure_usable(org_id, state.version.provider_id)
    caps = CapabilitySet.from_dict(state.version.capabilities)
    if caps.network_mode != "none":
        raise EvershellError(
            ErrorCode.NETWORK_POLICY_UNSUPPORTED,
            "This role's caps ask for a network allow-list; the sandbox backend here "
            "can only run with no network. Set `network: none` or wait for the egress "
            "proxy.", 409, {"role_id": state.role.id, "network": caps.network_mode})
    return state


def pinned_version(workspace: Workspace) -> RoleVersion:
    """The role version the workspace runs its tasks with (409 when the role is gone)."""
    version = db.session.scalar(sa.select(RoleVersion).where(
        RoleVersion.role_id == workspace.role_id,
        RoleVersion.number == workspace.role_version)) if workspace.role_id else None
    if version is None:
        raise EvershellError(ErrorCode.ROLE_NOT_FOUND,
                             "The role this workspace was provisioned from is gone.", 409,
                             {"workspace_id": workspace.id})
    return version


def current_packs(role_id: str) -> list[tuple[Pack, PackVersion]]:
    """The packs of the role's current version, each at its latest version."""
    rows = db.session.execute(
        sa.select(Pack, PackVersion)
        .join(RoleVersionPack, RoleVersionPack.pack_id == Pack.id)
        .join(RoleVersion, RoleVersion.id == RoleVersionPack.role_version_id)
        .join(Role, sa.and_(Role.id == RoleVersion.role_id,
                            Role.current_version == RoleVersion.number))
        .join(PackVersion, sa.and_(PackVersion.pack_id == Pack.id,
                                   PackVersion.number == Pack.latest_version))
        .where(Role.id == role_id).order_by(RoleVersionPack.position)).all()
    return [(pack, version) for pack, version in rows]


def _wanted(role_ids: Sequence[str]) -> dict[str, set[tuple[str, int, str]]]:
    result: dict[str, set[tuple[str, int, str]]] = {r: set() for r in role_ids}
    if not role_ids:
        return result
    rows = db.session.execute(
        sa.select(Role.id, Pack.id, PackVersion.number, PackVersion.content_hash)
        .join(RoleVersion, sa.and_(RoleVersion.role_id == Role.id,
                                   RoleVersion.number == Role.current_version))
        .join(RoleVersionPack, RoleVersionPack.role_version_id == RoleVersion.id)
        .join(Pack, Pack.id == RoleVersionPack.pack_id)
        .join(PackVersion, sa.and_(PackVersion.pack_id == Pack.id,
                                   PackVersion.number == Pack.latest_version))
        .where(Role.id.in_(role_ids))).all()
    for role_id, pack_id, number, digest in rows:
        result[role_id].add((pack_id, number, digest))
    return result


def statuses_of(workspaces: Sequence[Workspace]) -> dict[str, str]:
    """``pack_status`` of each workspace, in two queries whatever the count."""
    live = [w for w in workspaces if w.status in LIVE and w.role_id]
    result = {w.id: "unknown" for w in workspaces}
    if not live:
        return result
    wanted = _wanted(sorted({w.role_id for w in live}))
    have: dict[str, set[tuple[str, int, str]]] = {w.id: set() for w in live}
    for row in db.session.scalars(sa.select(WorkspacePack).where(
            WorkspacePack.workspace_id.in_([w.id for w in live]))):
        have[row.workspace_id].add((row.pack_id, row.version, row.digest))
    for workspace in live:
        result[workspace.id] = "current" if have[workspace.id] == wanted[workspace.role_id] \
            else "stale"
    return result


def status_of(workspace: Workspace) -> str:
    return statuses_of([workspace])[workspace.id]


def record_packs(workspace: Workspace, sources: Sequence[PackSource]) -> None:
    """What the live directory now holds (replacing what an earlier start recorded)."""
    db.session.execute(sa.delete(WorkspacePack).where(
        WorkspacePack.workspace_id == workspace.id))
    for source in sources:
        db.session.add(WorkspacePack(workspace_id=workspace.id, pack_id=source.pack_id,
                                     name=source.name, version=source.version,
                                     digest=source.digest))


def pack_sources(workspace: Workspace) -> list[PackSource]:
    """The role's current packs as read-only directories on this host, assembled once
    per content hash from the blob store (then shared by every workspace mounting it)."""
    if workspace.role_id is None:
        return []
    cache = Path(current_app.config["INSTANCE_DIR"]) / "pack-cache"
    sources = []
    for pack, version in current_packs(workspace.role_id):
        directory = cache / version.content_hash
        if not directory.is_dir():
            _assemble(workspace.org_id, version, directory)
        sources.append(PackSource(pack.id, pack.name, version.number, version.content_hash,
                                  directory))
    return sources


def _assemble(org_id: str, version: PackVersion, directory: Path) -> None:
    directory.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=".assembling-", dir=directory.parent))
    try:
        store = store_for(org_id)
        for entry in files_of(version):
            target = temp / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            with store.open(entry.digest) as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1024 * 1024)
            target.chmod(0o755 if entry.executable else 0o644)
        for root, dirs, _files in os.walk(temp):
            for name in dirs:
                Path(root, name).chmod(0o755)
        temp.chmod(0o755)
        try:
            temp.rename(directory)
        except OSError:
            if not directory.is_dir():  # another worker won the race: theirs is the same
                raise
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)


def latest_snapshot(workspace: Workspace) -> Snapshot | None:
    return db.session.scalar(sa.select(Snapshot).where(
        Snapshot.workspace_id == workspace.id).order_by(Snapshot.id.desc()).limit(1))


def chosen_snapshot(workspace: Workspace, ref: str | None, task_count: int | None) \
        -> Snapshot:
    """The snapshot a fork starts from: by ref, by task count (the latest with that
    count), or the latest; 409 ``no_snapshot`` without any, 404 ``snapshot_not_found``."""
    query = sa.select(Snapshot).where(Snapshot.workspace_id == workspace.id)
    if ref is None and task_count is None:
        snapshot = db.session.scalar(query.order_by(Snapshot.id.desc()).limit(1))
        if snapshot is None:
            raise EvershellError(ErrorCode.NO_SNAPSHOT,
                                 "This workspace has no snapshot to fork from yet; stop it "
                                 "first (stopping takes one).", 409,
                                 {"workspace_id": workspace.id})
        return snapshot
    if ref is not None:
        query = query.where(Snapshot.ref == ref)
    if task_count is not None:
        query = query.where(Snapshot.task_count == task_count)
    snapshot = db.session.scalar(query.order_by(Snapshot.id.desc()).limit(1))
    if snapshot is None:
        raise EvershellError(ErrorCode.SNAPSHOT_NOT_FOUND,
                             "No snapshot of this workspace matches "
                             + (f"ref {ref!r}" if ref is not None else
                                f"task count {task_count}") + ".", 404,
                             {"snapshot_ref": ref, "task_count": task_count})
    return snapshot
