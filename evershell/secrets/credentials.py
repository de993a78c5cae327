"""Credentials: connection material for external systems (a token, an SSH key, a username
and password), owned by one member (scope ``user``) or by the org (scope ``org``).

Rules held here (API and console only translate HTTP):

- SPEC §3: ``:own`` narrows to caller-owned credentials. A caller holding only
  ``credentials:read:own`` / ``credentials:write:own`` sees and changes the ``user``
  credentials they own, and nothing else: org-wide credentials need the unscoped
  ``credentials:read`` / ``credentials:write`` (to read or change them, and to create
  one), even for the member who created one before losing that scope. Another member's
  credential, or an org-wide one, is 403 ``permission_denied`` for such a caller; an id
  of another org is 404 ``credential_not_found``.
- Names follow the secret rules (environment-variable names) and are unique per owner,
  and once more among org-wide credentials; a member's own credential may share its
  name with an org-wide one, and then wins for the tasks that member submits
  (``resolve_for_task``).
- The kind fixes the material fields; the material is write-only (encrypted at rest,
  never returned). A rotation supplies the kind's material afresh.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa

from evershell.access.principal import Principal
from evershell.access.scopes import Scope
from evershell.audit import services as audit
from evershell.core.db import utcnow
from evershell.core.errors import ErrorCode, EvershellError, validation_error
from evershell.core.ids import new_id
from evershell.core.pagination import paginate
from evershell.extensions import db
from evershell.secrets import crypto, rules
from evershell.secrets.material import KIND_FIELDS, check_material
from evershell.secrets.models import Credential, CredentialKind, CredentialScope

USER, ORG = CredentialScope.USER.value, CredentialScope.ORG.value


@dataclass(frozen=True)
class ResolvedCredential:
    """A credential's decrypted material for a task; ``fields`` never shows in a repr."""

    name: str
    credential_id: str
    kind: str
    scope: str
    fields: dict[str, str] = field(repr=False)

    def environment(self) -> dict[str, str]:
        """How the material reaches the sandbox: ``NAME`` holds the token or private key,
        ``NAME_PASSPHRASE``, ``NAME_USERNAME`` and ``NAME_PASSWORD`` the rest."""
        if self.kind == CredentialKind.TOKEN:
            return {self.name: self.fields["token"]}
        if self.kind == CredentialKind.SSH_KEY:
            env = {self.name: self.fields["private_key"]}
            if self.fields.get("passphrase"):
                env[f"{self.name}_PASSPHRASE"] = self.fields["passphrase"]
            return env
        return {f"{self.name}_USERNAME": self.fields["username"],
                f"{self.name}_PASSWORD": self.fields["password"]}

    def secret_parts(self) -> list[str]:
        """The values a redactor must hide: everything but a username, which is an
        identifier (often a common word) rather than a secret."""
        return [v for k, v in self.fields.items() if k != "username" and v]


def _not_found(credential_id: str) -> EvershellError:
    return EvershellError(ErrorCode.CREDENTIAL_NOT_FOUND,
                          f"Credential {credential_id!r} was not found in this organisation.",
                          404)


def _denied(message: str) -> EvershellError:
    return EvershellError(ErrorCode.PERMISSION_DENIED, message, 403)


def _seal(credential: Credential, material: dict[str, str]) -> None:
    credential.sealed = crypto.encrypt_text(json.dumps(material), credential.org_id,
                                            credential.id)
    credential.fields = sorted(material)


def _owns(actor: Principal, credential: Credential) -> bool:
    return credential.scope == USER and credential.owner_user_id == actor.user_id


def _may(actor: Principal, credential: Credential, scope: Scope) -> bool:
    """``scope`` is the unscoped read or write scope the object needs unless owned."""
    return _owns(actor, credential) or actor.has_org_wide(scope)


def _name_free(org_id: str, name: str, owner_user_id: str | None,
               except_id: str | None = None) -> None:
    query = sa.select(Credential.id).where(Credential.org_id == org_id,
                                           Credential.name == name)
    query = query.where(Credential.owner_user_id == owner_user_id) if owner_user_id \
        else query.where(Credential.scope == ORG)
    if except_id:
        query = query.where(Credential.id != except_id)
    if db.session.scalar(query) is not None:
        raise rules.name_taken(name, "An org-wide credential" if owner_user_id is None
                               else "Your credential")


def create(actor: Principal, name: str, kind: str, material: dict,
           scope: str = USER, description: str | None = None) -> Credential:
    """A credential owned by the caller (``user``) or by the org (``org``, which needs
    ``credentials:write``)."""
    name = rules.check_name(name)
    description = rules.check_description(description)
    if scope not in (USER, ORG):
        raise validation_error({"scope": [f"Must be one of: {USER}, {ORG}."]})
    if kind not in KIND_FIELDS:
        raise validation_error({"kind": [f"Must be one of: {', '.join(KIND_FIELDS)}."]})
    material = check_material(kind, material)
    if scope == ORG and not actor.has_org_wide(Scope.CREDENTIALS_WRITE):
        raise _denied("Org-wide credentials need credentials:write.")
    owner = actor.user_id if scope == USER else None
    _name_free(actor.org_id, name, owner)
    credential = Credential(id=new_id("cred"), org_id=actor.org_id, name=name,
                            description=description, kind=kind, scope=scope,
                            owner_user_id=owner, created_by_user_id=actor.user_id)
    _seal(credential, material)
    try:
        with db.session.begin_nested():  # a concurrent create of the same name loses here
            db.session.add(credential)
    except sa.exc.IntegrityError:
        raise rules.name_taken(name, "A credential") from None
    audit.record(actor.org_id, "credential.create", "credential", credential.id,
                 {"name": name, "kind": kind, "scope": scope, "fields": credential.fields})
    return credential


def _visible(actor: Principal) -> sa.Select:
    query = sa.select(Credential).where(Credential.org_id == actor.org_id)
    if not actor.has_org_wide(Scope.CREDENTIALS_READ):
        query = query.where(Credential.scope == USER,
                            Credential.owner_user_id == actor.user_id)
    return query


def list_credentials(actor: Principal, limit: int, cursor: str | None,
                     scope: str | None = None, kind: str | None = None,
                     name: str | None = None) -> dict:
    """Credentials the caller may see, newest first: their own, or (with
    ``credentials:read``) the org's, filtered by ``scope``, ``kind`` and exact ``name``."""
    query = _visible(actor)
    for column, value in ((Credential.scope, scope), (Credential.kind, kind),
                          (Credential.name, name)):
        if value is not None:
            query = query.where(column == value)
    return paginate(db.session, query, Credential.id, limit, cursor)


def owner_emails(credentials: Iterable[Credential]) -> dict[str, str]:
    """user id → email of the owners of ``credentials`` (for the console's list)."""
    from evershell.access.models import User
    ids = {c.owner_user_id for c in credentials if c.owner_user_id}
    if not ids:
        return {}
    return dict(db.session.execute(sa.select(User.id, User.email).where(User.id.in_(ids))).all())


def _load(actor: Principal, credential_id: str, scope: Scope, verb: str) -> Credential:
    query = sa.select(Credential).where(Credential.id == credential_id,
                                        Credential.org_id == actor.org_id)
    if not scope.is_read:
        query = query.with_for_update()
    credential = db.session.scalar(query)
    if credential is None:
        raise _not_found(credential_id)
    if not _may(actor, credential, scope):
        raise _denied(f"{verb.capitalize()} an org-wide credential needs {scope.value}."
                      if credential.scope == ORG else
                      f"This credential belongs to another member; {verb} it needs "
                      f"{scope.value}.")
    return credential


def get(actor: Principal, credential_id: str) -> Credential:
    return _load(actor, credential_id, Scope.CREDENTIALS_READ, "reading")


def load_for_change(actor: Principal, credential_id: str) -> Credential:
    """The credential, if the caller may change it (for a rotation form)."""
    return _load(actor, credential_id, Scope.CREDENTIALS_WRITE, "changing")


def update(actor: Principal, credential_id: str, name: str | None = None,
           description: str | None = None, material: dict | None = None) -> Credential:
    """Rename, redescribe and/or rotate (new material for the same kind)."""
    if name is None and description is None and material is None:
        raise validation_error({"material": [
            "Give new material, a name, a description, or any of them together."]})
    credential = load_for_change(actor, credential_id)
    details: dict = {"name": credential.name}
    if name is not None and rules.check_name(name) != credential.name:
        _name_free(actor.org_id, name, credential.owner_user_id, except_id=credential.id)
        details["name"] = [credential.name, name]
        credential.name = name
    if description is not None:
        description = rules.check_description(description)
        if description != credential.description:
            details["description"] = [credential.description, description]
            credential.description = description
    if material is not None:
        _seal(credential, check_material(credential.kind, material))
        credential.last_rotated_at = utcnow()
        details["fields"] = credential.fields
    if len(details) == 1:
        return credential  # nothing changed: nothing to audit
    try:
        with db.session.begin_nested():
            db.session.flush()
    except sa.exc.IntegrityError:
        raise rules.name_taken(credential.name, "A credential") from None
    audit.record(actor.org_id, "credential.rotate" if material is not None
                 else "credential.update", "credential", credential.id, details)
    return credential


def delete(actor: Principal, credential_id: str) -> Credential:
    credential = _load(actor, credential_id, Scope.CREDENTIALS_WRITE, "deleting")
    db.session.delete(credential)
    db.session.flush()
    audit.record(actor.org_id, "credential.delete", "credential", credential.id,
                 {"name": credential.name, "scope": credential.scope,
                  "owner_user_id": credential.owner_user_id})
    return credential


def resolve_for_task(org_id: str, submitter_user_id: str | None,
                     names: Iterable[str]) -> dict[str, ResolvedCredential]:
    """The decrypted credentials a task's role names: for each name, the submitter's
    own credential if they have one, else the org-wide one. Never another member's.
    A name with neither is 404 ``credential_not_found`` with ``details.missing``."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    reachable = Credential.scope == ORG
    if submitter_user_id:
        reachable = sa.or_(reachable, Credential.owner_user_id == submitter_user_id)
    rows = db.session.scalars(sa.select(Credential).where(
        Credential.org_id == org_id, Credential.name.in_(wanted), reachable)).all()
    chosen: dict[str, Credential] = {}
    for row in rows:
        if row.name not in chosen or row.scope == USER:  # the submitter's own wins
            chosen[row.name] = row
    missing = [name for name in wanted if name not in chosen]
    if missing:
        raise EvershellError(
            ErrorCode.CREDENTIAL_NOT_FOUND,
            f"No credential named {', '.join(missing)} for this task's submitter or org.",
            404, {"missing": missing})
    return {name: ResolvedCredential(
        name=name, credential_id=row.id, kind=row.kind, scope=row.scope,
        fields=json.loads(crypto.decrypt_text(row.sealed, row.org_id, row.id)))
        for name, row in chosen.items()}
