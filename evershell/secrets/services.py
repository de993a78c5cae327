"""Secrets: org-wide named values, encrypted at rest, never returned by any read.

Rules held here (API and console only translate HTTP):

- Names are environment-variable names (``rules.NAME_PATTERN``), unique per org (409
  ``name_taken``), and never change: roles and providers refer to secrets by name, so a
  new name is a new secret.
- A value is text of 1 byte to 64 KiB without NUL characters. ``update`` with a value
  rotates it: new ciphertext under the ring's current key, ``last_rotated_at`` set.
- Plaintext leaves this module only through ``secret_values`` (for the task runner and
  provider adapters); no error message, log line or audit entry carries it.
- Ids of another org are 404 ``secret_not_found``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

import sqlalchemy as sa

from evershell.access.principal import Principal
from evershell.audit import services as audit
from evershell.core.db import utcnow
from evershell.core.errors import ErrorCode, EvershellError, validation_error
from evershell.core.ids import new_id
from evershell.core.pagination import paginate
from evershell.extensions import db
from evershell.secrets import crypto, rules, usage
from evershell.secrets.models import Credential, Secret


class Plaintexts(dict):
    """Decrypted values by name. Its repr names the keys only, so a traceback, a debug
    log or a test failure that prints it does not print the values."""

    def __repr__(self) -> str:
        return f"<Plaintexts {sorted(self)}>"

    __str__ = __repr__


def _not_found(secret_id: str) -> EvershellError:
    return EvershellError(ErrorCode.SECRET_NOT_FOUND,
                          f"Secret {secret_id!r} was not found in this organisation.", 404)


def _seal(secret: Secret, value: str) -> None:
    secret.sealed = crypto.encrypt_text(value, secret.org_id, secret.id)


def _name_free(org_id: str, name: str) -> None:
    if db.session.scalar(sa.select(Secret.id).where(
            Secret.org_id == org_id, Secret.name == name)) is not None:
        raise rules.name_taken(name, "A secret")


def create(actor: Principal, name: str, value: str, description: str | None = None) \
        -> Secret:
    """Store a new secret in the caller's org; 409 ``name_taken`` if the name is in use."""
    name = rules.check_name(name)
    description = rules.check_description(description)
    value = rules.check_value(value)
    _name_free(actor.org_id, name)
    secret = Secret(id=new_id("sec"), org_id=actor.org_id, name=name,
                    description=description, created_by_user_id=actor.user_id)
    _seal(secret, value)
    try:
        with db.session.begin_nested():  # a concurrent create of the same name loses here
            db.session.add(secret)
    except sa.exc.IntegrityError:
        raise rules.name_taken(name, "A secret") from None
    audit.record(actor.org_id, "secret.create", "secret", secret.id,
                 {"name": name, "description": description})
    return secret


def list_secrets(actor: Principal, limit: int, cursor: str | None,
                 name: str | None = None) -> dict:
    """The org's secrets, newest first; ``name`` narrows to one exact name."""
    query = sa.select(Secret).where(Secret.org_id == actor.org_id)
    if name is not None:
        query = query.where(Secret.name == name)
    return paginate(db.session, query, Secret.id, limit, cursor)


def get(actor: Principal, secret_id: str, for_update: bool = False) -> Secret:
    query = sa.select(Secret).where(Secret.id == secret_id, Secret.org_id == actor.org_id)
    secret = db.session.scalar(query.with_for_update() if for_update else query)
    if secret is None:
        raise _not_found(secret_id)
    return secret


def update(actor: Principal, secret_id: str, description: str | None = None,
           value: str | None = None) -> Secret:
    """Change the description and/or rotate the value (``last_rotated_at`` is set)."""
    if description is None and value is None:
        raise validation_error({"value": ["Give a new value, a description, or both."]})
    secret = get(actor, secret_id, for_update=True)
    details: dict = {"name": secret.name}
    if description is not None:
        description = rules.check_description(description)
        if description != secret.description:
            details["description"] = [secret.description, description]
            secret.description = description
    if value is not None:
        _seal(secret, rules.check_value(value))
        secret.last_rotated_at = utcnow()
    if value is None and "description" not in details:
        return secret  # nothing changed: nothing to audit
    db.session.flush()  # the answer shows the new updated_at
    audit.record(actor.org_id, "secret.rotate" if value is not None else "secret.update",
                 "secret", secret.id, details)
    return secret


def delete(actor: Principal, secret_id: str) -> Secret:
    """Delete a secret for good. While anything uses it (a provider's API key, a role's
    caps ``env``: whatever registered with ``usage``) it is refused with 409
    ``secret_in_use``; ``details`` lists the users' ids per kind (``providers``,
    ``roles``; an empty list for a kind that does not use it)."""
    secret = get(actor, secret_id, for_update=True)
    users = usage.usage_of(actor.org_id, [secret])[secret.id]
    if users:
        details = {kind: [] for kind in usage.registered()} | users.ids()
        raise EvershellError(ErrorCode.SECRET_IN_USE,
                             f"Secret {secret.name} is used by {users.describe()}; change "
                             "or delete them first.", 409, details)
    db.session.delete(secret)
    db.session.flush()
    audit.record(actor.org_id, "secret.delete", "secret", secret.id, {"name": secret.name})
    return secret


def secret_values(org_id: str, names: Iterable[str]) -> Plaintexts:
    """Decrypted values of the named secrets of ``org_id`` (for the task runner and
    provider adapters; never for a response). A name that does not exist is 404
    ``secret_not_found`` with ``details.missing``."""
    wanted = sorted(set(names))
    if not wanted:
        return Plaintexts()
    rows = db.session.scalars(sa.select(Secret).where(
        Secret.org_id == org_id, Secret.name.in_(wanted))).all()
    missing = sorted(set(wanted) - {row.name for row in rows})
    if missing:
        raise EvershellError(ErrorCode.SECRET_NOT_FOUND,
                             f"No secret named {', '.join(missing)} in this organisation.",
                             404, {"missing": missing})
    return Plaintexts({row.name: crypto.decrypt_text(row.sealed, row.org_id, row.id)
                       for row in rows})


def secret_by_id(org_id: str, secret_id: str) -> tuple[str, str] | None:
    """The (name, decrypted value) of secret ``secret_id`` of ``org_id``, for a provider
    adapter's API key; None when there is no such secret. Never for a response."""
    row = db.session.scalar(sa.select(Secret).where(Secret.org_id == org_id,
                                                    Secret.id == secret_id))
    if row is None:
        return None
    return row.name, crypto.decrypt_text(row.sealed, row.org_id, row.id)


def reencrypt_all(batch_size: int = 500) -> dict[str, int]:
    """Re-seal every secret and credential not yet under the key ring's first key.

    The operator's half of a key rotation: put the new key first in
    ``EVERSHELL_SECRETS_KEYS`` (old keys after it), run this, then drop the old keys.
    Each batch commits with one audit entry per org it touched, so an interrupted run
    resumes where it stopped (rows already under the new key are skipped). Returns how
    many rows of each kind were re-encrypted.
    """
    ring = crypto.keyring()
    done: Counter[str] = Counter()
    for model, label in ((Secret, "secrets"), (Credential, "credentials")):
        while True:
            rows = db.session.scalars(
                sa.select(model).where(model.key_id != ring.primary_id)
                .order_by(model.id).limit(batch_size).with_for_update()).all()
            if not rows:
                break
            per_org: defaultdict[str, int] = defaultdict(int)
            for row in rows:
                aad = crypto.row_aad(row.org_id, row.id)
                row.sealed = ring.encrypt(ring.decrypt(row.sealed, aad), aad)
                per_org[row.org_id] += 1
            for org_id, count in per_org.items():
                audit.record(org_id, "secrets.reencrypt", "org", org_id,
                             {"table": model.__tablename__, "rows": count,
                              "key_id": ring.primary_id})
            db.session.commit()
            done[label] += len(rows)
    return {"secrets": done["secrets"], "credentials": done["credentials"]}
