"""Reading a pack's versions and files: listings, one version with its files, and a
file's bytes (``services`` holds the changes)."""

from __future__ import annotations

from typing import BinaryIO

import sqlalchemy as sa

from evershell.access.principal import Principal
from evershell.core.blobs import BlobNotFound
from evershell.core.errors import ErrorCode, EvershellError
from evershell.core.inputs import version_number
from evershell.core.pagination import decode_cursor, encode_cursor, paginate
from evershell.extensions import db
from evershell.packs import storage
from evershell.packs.models import Pack, PackFile, PackVersion
from evershell.packs.services import get


def list_versions(actor: Principal, pack_id: str, limit: int, cursor: str | None) -> dict:
    """A pack's versions, newest first."""
    pack = get(actor, pack_id)
    return paginate(db.session, sa.select(PackVersion).where(PackVersion.pack_id == pack.id),
                    PackVersion.id, limit, cursor)


def get_version(actor: Principal, pack_id: str, number: int | str | None = None) \
        -> tuple[Pack, PackVersion]:
    """A version of a pack (``None``: the latest); 404 ``version_not_found``."""
    pack = get(actor, pack_id)
    if number is None:
        number = pack.latest_version
    wanted = version_number(number)
    version = db.session.scalar(sa.select(PackVersion).where(
        PackVersion.pack_id == pack.id, PackVersion.number == wanted)) if wanted else None
    if version is None:
        raise EvershellError(ErrorCode.VERSION_NOT_FOUND,
                             f"Pack {pack.name!r} has no version {number!r}.", 404)
    return pack, version


def _by_path():
    """Paths in code-point order on every backend (PostgreSQL collations would not)."""
    dialect = db.session.get_bind().dialect.name
    return PackFile.path.collate("C") if dialect == "postgresql" else PackFile.path


def files_of(version: PackVersion) -> list[PackFile]:
    """Every file of a version, by path."""
    return list(db.session.scalars(sa.select(PackFile).where(
        PackFile.version_id == version.id).order_by(_by_path())))


def list_files(actor: Principal, pack_id: str, number: int | None, limit: int,
               cursor: str | None) -> dict:
    """One page of a version's files by path; the cursor is the last path returned."""
    _pack, version = get_version(actor, pack_id, number)
    query = sa.select(PackFile).where(PackFile.version_id == version.id)
    if cursor:
        # Cursors carry a prefix so core's decoder (which wants an id shape) accepts them.
        query = query.where(_by_path() > decode_cursor(cursor).removeprefix("path_"))
    rows = list(db.session.scalars(query.order_by(_by_path()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"version": version.number, "data": rows,
            "next_cursor": encode_cursor("path_" + rows[-1].path) if more and rows else None}


def open_file(actor: Principal, pack_id: str, path: str, number: int | str | None = None) \
        -> tuple[PackFile, BinaryIO]:
    """A file of a version (default: the latest) and a stream of its bytes."""
    _pack, version = get_version(actor, pack_id, number)
    row = db.session.get(PackFile, (version.id, path))
    if row is None:
        raise EvershellError(ErrorCode.FILE_NOT_FOUND,
                             f"Version {version.number} has no file {path!r}.", 404)
    try:
        return row, storage.store_for(actor.org_id).open(row.digest)
    except BlobNotFound:
        # The database says the file exists, the store does not have it: ours to fix.
        raise RuntimeError(f"blob {row.digest} of {pack_id} {path!r} is missing") from None
