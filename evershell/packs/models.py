"""Content packs: a named, versioned set of files; each version's files are blobs.

- ``Pack``: name (a directory name: mounted at ``/data/packs/<name>/``), description,
  archive state and the number of its latest version.
- ``PackVersion``: 1, 2, …; ``content_hash`` identifies the file set (see
  ``services.content_hash``), so equal contents have equal hashes across packs.
- ``PackFile``: one file of one version: path, size, executable bit, blob digest.
- ``PackBlob``: the org's reference index of its pack blobs. Every ``PackFile`` points at
  its row (foreign key), so a blob row, and with it the stored blob, can only be removed
  once no file of any version references it; see ``storage``.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, foreign, mapped_column, relationship

from evershell.core.db import Timestamped, UTCDateTime, id_column
from evershell.extensions import db


class Pack(Timestamped, db.Model):
    """Names are unique in the org, archived packs included, so unarchiving never
    collides; the name never changes (it is the mount directory)."""

    __tablename__ = "packs"

    id: Mapped[str] = id_column("pack")
    org_id: Mapped[str] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    description: Mapped[str] = mapped_column(sa.String(2000), nullable=False, default="")
    latest_version: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_user_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"))

    latest: Mapped[PackVersion | None] = relationship(
        primaryjoin=lambda: sa.and_(foreign(PackVersion.pack_id) == Pack.id,
                                    foreign(PackVersion.number) == Pack.latest_version),
        viewonly=True, uselist=False, lazy="selectin")

    __table_args__ = (sa.UniqueConstraint("org_id", "name", name="uq_packs_org_id_name"),)


class PackVersion(Timestamped, db.Model):
    __tablename__ = "pack_versions"

    id: Mapped[str] = id_column("pkv")
    org_id: Mapped[str] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False, index=True)
    pack_id: Mapped[str] = mapped_column(
        sa.ForeignKey("packs.id", ondelete="CASCADE"), nullable=False)
    number: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    content_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    file_count: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    total_bytes: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    created_by_user_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (
        sa.UniqueConstraint("pack_id", "number", name="uq_pack_versions_pack_id_number"),
    )


class PackBlob(Timestamped, db.Model):
    __tablename__ = "pack_blobs"

    org_id: Mapped[str] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    digest: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    size: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)


class PackFile(db.Model):
    """Files are addressed by (version, path); there are up to thousands per version,
    so they carry no id of their own."""

    __tablename__ = "pack_files"

    version_id: Mapped[str] = mapped_column(
        sa.ForeignKey("pack_versions.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    org_id: Mapped[str] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False)
    digest: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    size: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    executable: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)

    __table_args__ = (
        # No ON DELETE: a referenced blob row cannot go (the database refuses), which is
        # what makes deleting unreferenced blobs safe against concurrent uploads.
        sa.ForeignKeyConstraint(["org_id", "digest"], ["pack_blobs.org_id", "pack_blobs.digest"],
                                name="fk_pack_files_org_id_digest_pack_blobs"),
        sa.Index("ix_pack_files_org_id_digest", "org_id", "digest"),
    )
