"""Secrets and credentials. Values are stored only as AES-256-GCM ciphertext (see
``crypto``); ``key_id`` names the key of the ring that sealed each row."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from evershell.core.db import Timestamped, UTCDateTime, id_column
from evershell.extensions import db
from evershell.secrets.crypto import Sealed


class CredentialKind(enum.StrEnum):
    TOKEN = "token"
    SSH_KEY = "ssh_key"
    USERNAME_PASSWORD = "username_password"


class CredentialScope(enum.StrEnum):
    USER = "user"  # owned by the member who created it (the ``:own`` scopes)
    ORG = "org"  # org-wide (needs the unscoped credentials scopes)


class _Encrypted:
    key_id: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    ciphertext: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False)
    # When the value was last replaced; null until the first rotation.
    last_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def sealed(self) -> Sealed:
        return Sealed(self.key_id, self.ciphertext)

    @sealed.setter
    def sealed(self, sealed: Sealed) -> None:
        self.key_id, self.ciphertext = sealed.key_id, sealed.ciphertext

    def __repr__(self) -> str:  # never the ciphertext, not even in a debugger
        return f"<{type(self).__name__} {getattr(self, 'id', None)} {getattr(self, 'name', '')}>"


class Secret(_Encrypted, Timestamped, db.Model):
    __tablename__ = "secrets"

    id: Mapped[str] = id_column("sec")
    org_id: Mapped[str] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    description: Mapped[str] = mapped_column(sa.String(500), nullable=False, default="")
    # Org-wide values outlive the member who typed them in.
    created_by_user_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (sa.UniqueConstraint("org_id", "name"),)


class Credential(_Encrypted, Timestamped, db.Model):
    __tablename__ = "credentials"

    id: Mapped[str] = id_column("cred")
    org_id: Mapped[str] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    description: Mapped[str] = mapped_column(sa.String(500), nullable=False, default="")
    kind: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    scope: Mapped[str] = mapped_column(sa.String(10), nullable=False)
    # The member a ``user`` credential belongs to; null for ``org`` credentials.
    owner_user_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_by_user_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"))
    # Which material fields are set (e.g. ["private_key", "passphrase"]): not secret, and
    # it tells people what a rotation has to supply.
    fields: Mapped[list] = mapped_column(sa.JSON, nullable=False)

    __table_args__ = (
        sa.CheckConstraint("kind in ('token', 'ssh_key', 'username_password')", name="kind"),
        sa.CheckConstraint(
            "(scope = 'user' and owner_user_id is not null) or "
            "(scope = 'org' and owner_user_id is null)", name="scope_owner"),
        # A name is unique per owner, and once more among org-wide credentials (NULL owners
        # never collide in a plain unique constraint, hence the partial index).
        sa.UniqueConstraint("org_id", "owner_user_id", "name"),
        sa.Index("uq_credentials_org_wide_name", "org_id", "name", unique=True,
                 sqlite_where=sa.text("scope = 'org'"),
                 postgresql_where=sa.text("scope = 'org'")),
    )
