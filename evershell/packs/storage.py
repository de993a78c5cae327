"""Pack blobs: storing an upload's files, keeping them referenced, deleting the unused.

Blobs live in the org's namespace of the blob store (``packs/<org_id>``) and are shared
by every file, version and pack of the org with the same content. ``pack_blobs`` rows
index them and every ``pack_files`` row references its blob row (foreign key). Races
between an upload and a pack deletion are settled by the database, not by timing:

- an upload first streams its files into the store (no lock held: this is the slow
  part), then in its transaction locks each blob row (creating it if needed), makes sure
  the blob is there (storing it again if a deletion removed it meanwhile) and inserts
  its file rows;
- a deletion removes blob rows only where no file row references them — the foreign key
  refuses otherwise, even for an upload not yet committed, whose row lock it waits
  for — and deletes the blob while it holds that row, before its commit.

Should the deleting transaction fail after the blobs were deleted, only the pack being
deleted loses content; a later upload of the same content restores it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from evershell.core.blobs import BlobStore, BlobTooLarge, blob_store
from evershell.core.errors import validation_error
from evershell.extensions import db
from evershell.packs.models import PackBlob, PackFile
from evershell.packs.uploads import READ_ERRORS, Entry, Limits

BATCH = 500  # bound on bound parameters per statement (SQLite allows 32,766)
_LOCK_ATTEMPTS = 5


@dataclass(frozen=True)
class StoredFile:
    path: str
    digest: str
    size: int
    executable: bool
    entry: Entry


def store_for(org_id: str) -> BlobStore:
    return blob_store(f"packs/{org_id}")


def _batches(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), BATCH):
        yield items[start:start + BATCH]


def store_entries(org_id: str, entries: list[Entry], limit: Limits,
                  field: str) -> list[StoredFile]:
    """Stream every entry into the store; a file that turns out larger than the limits
    allow, or that cannot be read, is a 400 naming its path."""
    stored: list[StoredFile] = []
    total = 0
    with store_for(org_id).batch() as batch:
        for entry in entries:
            try:
                blob = batch.put(entry.open(), max_bytes=min(limit.max_file_bytes,
                                                             limit.max_total_bytes - total))
            except BlobTooLarge:
                raise validation_error(
                    {field: {entry.path: ["is larger than the limits allow"]}},
                    f"Upload refused: {entry.path} is too large.") from None
            except READ_ERRORS as exc:
                raise validation_error(
                    {field: {entry.path: [f"could not be read ({exc})"]}},
                    f"Upload refused: {entry.path} could not be read.") from None
            total += blob.size
            stored.append(StoredFile(entry.path, blob.digest, blob.size, entry.executable,
                                     entry))
    return stored


def _insert_missing(org_id: str, sizes: dict[str, int], digests: Sequence[str]) -> None:
    rows = [{"org_id": org_id, "digest": d, "size": sizes[d]} for d in digests]
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    db.session.execute(insert(PackBlob).values(rows).on_conflict_do_nothing())


def retain(org_id: str, files: list[StoredFile]) -> None:
    """Lock the blob rows of ``files`` for this transaction (creating missing ones) and
    make sure every blob is in the store; then the file rows may reference them."""
    sizes = {f.digest: f.size for f in files}
    sources = {f.digest: f.entry for f in files}
    wanted = sorted(sizes)
    for batch in _batches(wanted):
        pending = list(batch)
        for _attempt in range(_LOCK_ATTEMPTS):
            _insert_missing(org_id, sizes, pending)
            # FOR KEY SHARE: a concurrent deletion of these rows waits for our commit
            # (SQLite serialises writers, so there the clause is simply not rendered).
            locked = set(db.session.scalars(
                sa.select(PackBlob.digest)
                .where(PackBlob.org_id == org_id, PackBlob.digest.in_(pending))
                .with_for_update(read=True, key_share=True)))
            pending = [d for d in pending if d not in locked]
            if not pending:
                break
        else:  # pragma: no cover - needs a deletion winning five races in a row
            raise RuntimeError("could not lock the blob rows of an upload")
    store = store_for(org_id)
    for digest in wanted:
        if not store.exists(digest):  # deleted by a pack deletion since we stored it
            again = store.put(sources[digest].open())
            if again.digest != digest:
                raise RuntimeError(f"{sources[digest].path} changed while being stored")


def add_files(org_id: str, version_id: str, files: list[StoredFile]) -> None:
    """Insert the file rows of a version (after ``retain``)."""
    rows = [{"version_id": version_id, "org_id": org_id, "path": f.path, "digest": f.digest,
             "size": f.size, "executable": f.executable} for f in files]
    for start in range(0, len(rows), BATCH):
        db.session.execute(sa.insert(PackFile), rows[start:start + BATCH])


def release(org_id: str, digests: Iterable[str]) -> int:
    """Delete the blobs (rows and stored content) among ``digests`` that no file
    references any more; call after deleting file rows, in the same transaction.
    Returns how many were deleted."""
    referenced = sa.exists().where(PackFile.org_id == PackBlob.org_id,
                                   PackFile.digest == PackBlob.digest)
    store = store_for(org_id)
    deleted = 0
    for batch in _batches(sorted(set(digests))):
        unreferenced = list(db.session.scalars(
            sa.select(PackBlob.digest)
            .where(PackBlob.org_id == org_id, PackBlob.digest.in_(batch), ~referenced)))
        for digest in _delete_rows(org_id, unreferenced):
            store.delete(digest)  # under the row's lock: see the module docstring
            deleted += 1
    return deleted


def _delete_rows(org_id: str, digests: list[str]) -> list[str]:
    """Delete the blob rows the foreign key lets go of: all at once, or one by one when
    a concurrent upload has started referencing one of them."""
    if not digests:
        return []
    try:
        with db.session.begin_nested():
            db.session.execute(sa.delete(PackBlob).where(
                PackBlob.org_id == org_id, PackBlob.digest.in_(digests)))
        return digests
    except IntegrityError:
        pass
    gone = []
    for digest in digests:
        try:
            with db.session.begin_nested():
                db.session.execute(sa.delete(PackBlob).where(
                    PackBlob.org_id == org_id, PackBlob.digest == digest))
            gone.append(digest)
        except IntegrityError:
            continue  # referenced again: keep it
    return gone
