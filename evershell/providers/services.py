"""Provider actions: list, get, create, update, archive, unarchive, delete.

Rules held here (API and console only translate HTTP):

| kind | base_url | api_key_secret_id | models | script |
|---|---|---|---|---|
| anthropic | default https://api.anthropic.com | required | required | forbidden |
| openai | default https://api.openai.com/v1 | required | required | forbidden |
| openai_compatible | required | optional | required | forbidden |
| scripted | forbidden | forbidden | default ["scripted"] | required |

- A base URL someone types passes ``ssrf.validate_base_url`` under the operator's
  ``EVERSHELL_ALLOW_PRIVATE_NETWORKS``; it is stored normalised.
- The API key is a reference to a secret of the same org (the value never passes here);
  another org's secret id is a 400 on the field, as if it did not exist.
- Names are unique in the org, archived providers included (409 ``name_taken``).
- ``kind`` never changes: a different kind is a different provider.
- Archived providers are read-only until unarchived (409 ``provider_archived``); roles
  and tasks ask ``ensure_usable`` before using one.
- Every field error is reported at once, at ``details.fields`` (rules in ``rules``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from evershell.access.principal import Principal
from evershell.audit import services as audit
from evershell.core.db import utcnow
from evershell.core.errors import ErrorCode, EvershellError, validation_error
from evershell.core.pagination import paginate
from evershell.extensions import db
from evershell.providers import rules
from evershell.providers.models import Provider, ProviderKind
from evershell.providers.rules import Invalid
from evershell.secrets import usage as secret_usage

# The secret's id is no secret, but the audit writer refuses any detail named like one.
AUDIT_KEY_REFERENCE = "key_reference"


def _not_found(provider_id: str) -> EvershellError:
    return EvershellError(ErrorCode.PROVIDER_NOT_FOUND,
                          f"Provider {provider_id!r} was not found in this organisation.", 404)


def _archived(provider: Provider) -> EvershellError:
    return EvershellError(ErrorCode.PROVIDER_ARCHIVED,
                          f"Provider {provider.name!r} is archived; unarchive it first.", 409,
                          {"provider_id": provider.id})


def _name_taken(name: str) -> EvershellError:
    return EvershellError(ErrorCode.NAME_TAKEN, f"A provider named {name} already exists.",
                          409, {"name": name})


def status_of(provider: Provider) -> str:
    """``active`` or ``archived``; ``deleted`` in the answer to a delete."""
    if sa.inspect(provider).was_deleted:
        return "deleted"
    return "archived" if provider.archived_at is not None else "active"


def _name_in_use(org_id: str, name: str, exclude_id: str | None = None) -> bool:
    query = sa.select(Provider.id).where(Provider.org_id == org_id, Provider.name == name)
    if exclude_id is not None:
        query = query.where(Provider.id != exclude_id)
    return db.session.scalar(query) is not None


def _flush(org_id: str, name: str, exclude_id: str | None = None) -> None:
    """Flush in a savepoint: when a concurrent request took the name between our check
    and the insert, the unique constraint answers and the caller gets ``name_taken``."""
    try:
        with db.session.begin_nested():
            db.session.flush()
    except sa.exc.IntegrityError:
        if _name_in_use(org_id, name, exclude_id):
            raise _name_taken(name) from None
        raise


# -- reads -------------------------------------------------------------------------------

def list_providers(actor: Principal, limit: int, cursor: str | None,
                   archived: bool = False, kind: str | None = None) -> dict:
    """The org's providers, newest first: active ones, or archived ones with
    ``archived=True``; ``kind`` narrows to one kind."""
    query = sa.select(Provider).where(
        Provider.org_id == actor.org_id,
        Provider.archived_at.is_not(None) if archived else Provider.archived_at.is_(None))
    if kind is not None:
        try:
            query = query.where(Provider.kind == rules.check_kind(kind).value)
        except Invalid as exc:
            raise validation_error({"kind": exc.messages}) from None
    return paginate(db.session, query, Provider.id, limit, cursor)


def get(actor: Principal, provider_id: str, for_update: bool = False) -> Provider:
    """One provider of the caller's org, archived or not; 404 ``provider_not_found``."""
    query = sa.select(Provider).where(Provider.id == provider_id,
                                      Provider.org_id == actor.org_id)
    provider = db.session.scalar(query.with_for_update() if for_update else query)
    if provider is None:
        raise _not_found(provider_id)
    return provider


def ensure_usable(org_id: str, provider_id: str) -> Provider:
    """The provider a role or task is about to use: 404 when not in ``org_id``, 409
    ``provider_archived`` when archived."""
    provider = db.session.scalar(sa.select(Provider).where(
        Provider.id == provider_id, Provider.org_id == org_id))
    if provider is None:
        raise _not_found(provider_id)
    if provider.archived_at is not None:
        raise _archived(provider)
    return provider


def api_key(provider: Provider) -> tuple[str, str] | None:
    """The (secret name, key) a provider calls with, the key stripped (a pasted line
    break is not part of it); None without a key, or when the secret is gone or blank.
    For adapters and the connection check; never for a response."""
    if provider.api_key_secret_id is None:
        return None
    from evershell.secrets.services import secret_by_id
    found = secret_by_id(provider.org_id, provider.api_key_secret_id)
    if found is None or not found[1].strip():
        return None
    return found[0], found[1].strip()


def providers_using_secret(org_id: str, secret_id: str) -> list[str]:
    """Ids of the org's providers whose API key is ``secret_id`` (archived included)."""
    return list(db.session.scalars(sa.select(Provider.id).where(
        Provider.org_id == org_id, Provider.api_key_secret_id == secret_id)
        .order_by(Provider.id)))


def _providers_using_secrets(org_id: str, secrets) -> dict[str, list[tuple[str, str]]]:
    """The secrets-usage check (see ``secrets.usage``): per secret id, the providers
    (archived included: unarchiving one must find its key) holding it as their API key."""
    found: dict[str, list[tuple[str, str]]] = {}
    for secret_id, provider_id, name in db.session.execute(
            sa.select(Provider.api_key_secret_id, Provider.id, Provider.name)
            .where(Provider.org_id == org_id,
                   Provider.api_key_secret_id.in_([s.id for s in secrets]))
            .order_by(Provider.id)):
        found.setdefault(secret_id, []).append((provider_id, name))
    return found


secret_usage.register("providers", _providers_using_secrets)


# -- mutations ---------------------------------------------------------------------------

def create(actor: Principal, values: Mapping[str, Any]) -> Provider:
    """Create a provider from ``values`` (the API body: name, kind, base_url,
    api_key_secret_id, models, script), applying the kind's rules and defaults."""
    errors = rules.unknown_fields(values)
    name = kind = None
    try:
        name = rules.check_name(values.get("name"))
    except Invalid as exc:
        errors["name"] = exc.messages
    try:
        kind = rules.check_kind(values.get("kind"))
    except Invalid as exc:
        errors["kind"] = exc.messages
    fields = rules.kind_fields(actor, kind, values, {}, errors) if kind else {}
    if errors:
        raise validation_error(errors)
    if _name_in_use(actor.org_id, name):
        raise _name_taken(name)
    provider = Provider(org_id=actor.org_id, name=name, kind=kind.value, **fields)
    db.session.add(provider)
    _flush(actor.org_id, name)
    audit.record(actor.org_id, "provider.create", "provider", provider.id,
                 {"name": name, "kind": kind.value, "base_url": provider.base_url,
                  AUDIT_KEY_REFERENCE: provider.api_key_secret_id, "models": provider.models})
    return provider


def update(actor: Principal, provider_id: str, changes: Mapping[str, Any]) -> Provider:
    """Change some fields of a provider (the others stay). The result must satisfy its
    kind's rules; ``kind`` itself cannot change. Archived providers: 409."""
    provider = get(actor, provider_id, for_update=True)
    if provider.archived_at is not None:
        raise _archived(provider)
    errors = rules.unknown_fields(changes)
    kind = ProviderKind(provider.kind)
    if "kind" in changes and changes["kind"] != provider.kind:
        errors["kind"] = ["A provider's kind cannot change; create a new provider instead."]
    name = provider.name
    if "name" in changes:
        try:
            name = rules.check_name(changes["name"])
        except Invalid as exc:
            errors["name"] = exc.messages
    current = {field: getattr(provider, field) for field in rules.KIND_FIELDS}
    fields = rules.kind_fields(actor, kind, changes, current, errors)
    if errors:
        raise validation_error(errors)
    fields["name"] = name
    changed = sorted(f for f, v in fields.items() if getattr(provider, f) != v)
    if not changed:
        return provider
    if "name" in changed and _name_in_use(actor.org_id, name, exclude_id=provider.id):
        raise _name_taken(name)
    details: dict[str, Any] = {"name": name, "changed": changed}
    for field in ("name", "base_url", "api_key_secret_id", "models"):
        if field in changed:
            label = AUDIT_KEY_REFERENCE if field == "api_key_secret_id" else field
            details[label] = [getattr(provider, field), fields[field]]
    for field in changed:
        setattr(provider, field, fields[field])
    _flush(actor.org_id, name, exclude_id=provider.id)
    audit.record(actor.org_id, "provider.update", "provider", provider.id, details)
    return provider


def archive(actor: Principal, provider_id: str) -> Provider:
    """Archive: hidden from the default list, unusable by new roles and tasks, kept for
    history. Archiving an archived provider changes nothing."""
    provider = get(actor, provider_id, for_update=True)
    if provider.archived_at is None:
        provider.archived_at = utcnow()
        audit.record(actor.org_id, "provider.archive", "provider", provider.id,
                     {"name": provider.name})
    return provider


def unarchive(actor: Principal, provider_id: str) -> Provider:
    """Make an archived provider usable again (names stay unique, so this never clashes)."""
    provider = get(actor, provider_id, for_update=True)
    if provider.archived_at is not None:
        provider.archived_at = None
        audit.record(actor.org_id, "provider.unarchive", "provider", provider.id,
                     {"name": provider.name})
    return provider


def provider_references(provider: Provider) -> list[str]:
    """Ids of what still uses ``provider``; ``delete`` answers 409 ``provider_in_use``
    while there are any.

    HOOK: today the roles with any version (current or past: a workspace may be pinned to
    it) on this provider, asked through ``roles.services``. Whatever else comes to name a
    provider adds its ids here.
    """
    from evershell.roles import services as roles  # roles import providers: import late
    return roles.roles_using_provider(provider.org_id, provider.id)


def delete(actor: Principal, provider_id: str) -> Provider:
    """Delete a provider for good (archive keeps it). 409 ``provider_in_use`` while
    anything references it. Returns the provider as it was."""
    provider = get(actor, provider_id, for_update=True)
    references = provider_references(provider)
    if references:
        raise EvershellError(
            ErrorCode.PROVIDER_IN_USE,
            f"Provider {provider.name!r} is used by {len(references)} role(s); point them "
            "at another provider or archive this one instead.", 409,
            {"used_by": references})
    db.session.delete(provider)
    db.session.flush()
    audit.record(actor.org_id, "provider.delete", "provider", provider.id,
                 {"name": provider.name, "kind": provider.kind})
    return provider
