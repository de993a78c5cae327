"""Content packs: create (version 1), new versions, read, archive, delete.

Rules held here (API and console only translate HTTP):

- A pack's name is a directory name (it is mounted at ``/data/packs/<name>/``): lowercase
  letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit, at most 64
  characters; unique in the org, archived packs included (409 ``name_taken``); it never
  changes.
- Every upload is checked as a whole before anything is recorded (``uploads``); its
  files are stored content-addressed (``storage``).
- A version's ``content_hash`` is the SHA-256 of its manifest (``content_hash``): equal
  file sets have equal hashes, in any pack. Uploading exactly the latest version's
  content again records nothing: the answer is that version with status 200, not a new
  one with 201, so re-running a sync script is harmless.
- Archived packs are read-only: new versions and edits are 409 ``pack_archived``.
- ``DELETE`` is 409 ``pack_in_use`` while any role version mounts the pack
  (``in_use_by``); otherwise it removes the pack, its versions and files, and the blobs
  no other file of the org references.
- Ids of another org are 404, as if they did not exist.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import re
from collections.abc import Iterator
from typing import BinaryIO

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from evershell.access.principal import Principal
from evershell.audit import services as audit
from evershell.core.db import utcnow
from evershell.core.errors import ErrorCode, EvershellError, validation_error
from evershell.core.pagination import paginate
from evershell.extensions import db
from evershell.packs import storage, uploads
from evershell.packs.models import Pack, PackFile, PackVersion

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MAX_DESCRIPTION = 2000
Parts = list[tuple[str | None, BinaryIO]]


def _not_found(pack_id: str) -> EvershellError:
    return EvershellError(ErrorCode.PACK_NOT_FOUND,
                          f"Pack {pack_id!r} was not found in this organisation.", 404)


def status_of(pack: Pack) -> str:
    """``active`` or ``archived``; ``deleted`` in the answer to DELETE."""
    if sa.inspect(pack).deleted or sa.inspect(pack).was_deleted:
        return "deleted"
    return "archived" if pack.archived_at is not None else "active"


def mount_path(pack: Pack) -> str:
    return f"/data/packs/{pack.name}/"


def content_hash(files: list[tuple[str, str, bool]]) -> str:
    """SHA-256 (hex) of the manifest: the JSON array of ``[path, file sha256,
    executable]`` sorted by path, compact, UTF-8. Paths are unique, so the order is
    total; names and timestamps of the upload play no part."""
    manifest = sorted([path, digest, bool(executable)] for path, digest, executable in files)
    encoded = json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(encoded).hexdigest()


def _clean_name(name: str | None) -> str:
    name = (name or "").strip()
    if not NAME_PATTERN.match(name):
        raise validation_error({"name": [
            "Use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter "
            "or digit (it becomes the directory /data/packs/<name>/)."]})
    return name


def _clean_description(description: str | None) -> str:
    description = (description or "").strip()
    if len(description) > MAX_DESCRIPTION:
        raise validation_error({"description": [
            f"At most {MAX_DESCRIPTION} characters."]})
    return description


@contextlib.contextmanager
def _entries(files: Parts, archive: BinaryIO | None) -> Iterator[tuple[list, str]]:
    """The upload's checked entries and the field they came from."""
    if files and archive is not None:
        raise validation_error({"archive": ["Send files or one archive, not both."]})
    limit = uploads.limits()
    if archive is not None:
        with uploads.from_archive(archive, limit) as entries:
            yield entries, "archive"
    else:
        yield uploads.from_files(files, limit), "files"


def _name_taken(name: str) -> EvershellError:
    return EvershellError(ErrorCode.NAME_TAKEN,
                          f"A pack named {name!r} already exists in this organisation.", 409,
                          {"fields": {"name": ["Already taken."]}})


def create(actor: Principal, name: str | None, description: str | None = None,
           files: Parts | None = None, archive: BinaryIO | None = None) -> Pack:
    """Create a pack from an upload (file parts, or one archive); it gets version 1."""
    name, description = _clean_name(name), _clean_description(description)
    if db.session.scalar(sa.select(Pack.id).where(Pack.org_id == actor.org_id,
                                                  Pack.name == name)):
        raise _name_taken(name)
    with _entries(files or [], archive) as (entries, field):
        stored = storage.store_entries(actor.org_id, entries, uploads.limits(), field)
        pack = Pack(org_id=actor.org_id, name=name, description=description,
                    latest_version=0, created_by_user_id=actor.user_id)
        try:
            with db.session.begin_nested():
                db.session.add(pack)
        except IntegrityError:
            raise _name_taken(name) from None  # created meanwhile by someone else
        version = _record_version(actor, pack, stored)
    audit.record(actor.org_id, "pack.create", "pack", pack.id,
                 {"name": name, **_version_details(version)})
    return pack


def add_version(actor: Principal, pack_id: str, files: Parts | None = None,
                archive: BinaryIO | None = None) -> tuple[PackVersion, bool]:
    """Upload a new version; returns (version, created). Content equal to the latest
    version's records nothing and returns that version with ``created`` False."""
    pack = _get(actor, pack_id, lock=True)
    _ensure_active(pack)
    with _entries(files or [], archive) as (entries, field):
        stored = storage.store_entries(actor.org_id, entries, uploads.limits(), field)
        latest = pack.latest
        if latest is not None and latest.content_hash == _hash_of(stored):
            return latest, False
        version = _record_version(actor, pack, stored)
    audit.record(actor.org_id, "pack.version_create", "pack", pack.id,
                 {"name": pack.name, **_version_details(version)})
    return version, True


def _hash_of(stored: list[storage.StoredFile]) -> str:
    return content_hash([(f.path, f.digest, f.executable) for f in stored])


def _version_details(version: PackVersion) -> dict:
    return {"version": version.number, "file_count": version.file_count,
            "total_bytes": version.total_bytes, "content_hash": version.content_hash}


def _record_version(actor: Principal, pack: Pack,
                    stored: list[storage.StoredFile]) -> PackVersion:
    version = PackVersion(org_id=actor.org_id, pack_id=pack.id,
                          number=pack.latest_version + 1, content_hash=_hash_of(stored),
                          file_count=len(stored), total_bytes=sum(f.size for f in stored),
                          created_by_user_id=actor.user_id)
    db.session.add(version)
    db.session.flush()
    storage.retain(actor.org_id, stored)
    storage.add_files(actor.org_id, version.id, stored)
    pack.latest_version = version.number
    pack.updated_at = utcnow()
    db.session.flush()
    db.session.expire(pack, ["latest"])
    return version


# -- reading ---------------------------------------------------------------------------

def _get(actor: Principal, pack_id: str, lock: bool = False) -> Pack:
    query = sa.select(Pack).where(Pack.id == pack_id, Pack.org_id == actor.org_id)
    pack = db.session.scalar(query.with_for_update() if lock else query)
    if pack is None:
        raise _not_found(pack_id)
    return pack


def get(actor: Principal, pack_id: str) -> Pack:
    """One pack of the caller's org, archived or not, with its latest version."""
    return _get(actor, pack_id)


def list_packs(actor: Principal, limit: int, cursor: str | None,
               archived: bool = False) -> dict:
    """The org's packs, newest first: active ones, or archived ones."""
    query = sa.select(Pack).where(
        Pack.org_id == actor.org_id,
        Pack.archived_at.is_not(None) if archived else Pack.archived_at.is_(None))
    return paginate(db.session, query, Pack.id, limit, cursor)


# -- changes ---------------------------------------------------------------------------

def _ensure_active(pack: Pack) -> None:
    if pack.archived_at is not None:
        raise EvershellError(ErrorCode.PACK_ARCHIVED,
                             f"Pack {pack.name!r} is archived; unarchive it first.", 409)


def update(actor: Principal, pack_id: str, description: str | None) -> Pack:
    """Change the description (the name is the mount directory and never changes)."""
    pack = _get(actor, pack_id, lock=True)
    _ensure_active(pack)
    description = _clean_description(description)
    if description != pack.description:
        pack.description = description
        db.session.flush()
        audit.record(actor.org_id, "pack.update", "pack", pack.id,
                     {"name": pack.name, "changed": ["description"]})
    return pack


def archive(actor: Principal, pack_id: str) -> Pack:
    """Archive: listed only with ``?archived=true``, read-only until unarchived. Roles
    that mount it keep their reference (their service decides what archived means to
    new workspaces)."""
    pack = _get(actor, pack_id, lock=True)
    if pack.archived_at is None:
        pack.archived_at = utcnow()
        db.session.flush()
        audit.record(actor.org_id, "pack.archive", "pack", pack.id, {"name": pack.name})
    return pack


def unarchive(actor: Principal, pack_id: str) -> Pack:
    pack = _get(actor, pack_id, lock=True)
    if pack.archived_at is not None:
        pack.archived_at = None
        db.session.flush()
        audit.record(actor.org_id, "pack.unarchive", "pack", pack.id, {"name": pack.name})
    return pack


def in_use_by(org_id: str, pack_id: str) -> list[str]:
    """Ids of the roles of which any version mounts the pack (workspaces pinned to an
    old version still need it).

    Asks ``evershell.roles.services.roles_using_pack(org_id, pack_id)`` when the roles
    domain offers it, else reads its link table (``RoleVersionPack`` joined to
    ``RoleVersion`` in ``evershell.roles.models``); neither: no role uses any pack.
    """
    role_services = importlib.util.find_spec("evershell.roles.services")
    ask = getattr(importlib.import_module("evershell.roles.services"), "roles_using_pack",
                  None) if role_services else None
    if ask is not None:
        return sorted(ask(org_id, pack_id))
    role_models = importlib.import_module("evershell.roles.models")
    link = getattr(role_models, "RoleVersionPack", None)
    versions = getattr(role_models, "RoleVersion", None)
    if link is None or versions is None:
        return []
    return sorted(db.session.scalars(
        sa.select(versions.role_id).distinct()
        .join(link, link.role_version_id == versions.id)
        .where(link.pack_id == pack_id, link.org_id == org_id)))


def delete(actor: Principal, pack_id: str) -> Pack:
    """Delete a pack with its versions, files and the blobs nothing else references;
    409 ``pack_in_use`` while a role mounts it."""
    pack = _get(actor, pack_id, lock=True)
    roles = in_use_by(actor.org_id, pack.id)
    if roles:
        raise EvershellError(ErrorCode.PACK_IN_USE,
                             f"Pack {pack.name!r} is mounted by {len(roles)} role(s); "
                             "remove it from them first.", 409, {"role_ids": roles})
    versions = sa.select(PackVersion.id).where(PackVersion.pack_id == pack.id)
    digests = set(db.session.scalars(
        sa.select(PackFile.digest).distinct().where(PackFile.version_id.in_(versions))))
    version_count = pack.latest_version
    bulk = {"synchronize_session": False}
    db.session.execute(sa.delete(PackFile).where(PackFile.version_id.in_(versions)),
                       execution_options=bulk)
    db.session.execute(sa.delete(PackVersion).where(PackVersion.pack_id == pack.id),
                       execution_options=bulk)
    db.session.delete(pack)
    db.session.flush()
    blobs_deleted = storage.release(actor.org_id, digests)
    audit.record(actor.org_id, "pack.delete", "pack", pack.id,
                 {"name": pack.name, "versions": version_count, "blobs_deleted": blobs_deleted})
    return pack
