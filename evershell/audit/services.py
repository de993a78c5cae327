"""Writing audit entries. ``record`` joins the caller's transaction, so an entry exists
exactly when its mutation does; ``record_denied`` rolls the denied request back and
commits the entry alone."""

from __future__ import annotations

from typing import Any

from flask import g, has_request_context, request

from evershell.audit.models import AuditEntry
from evershell.core.requests import current_request_id
from evershell.extensions import db

# Detail names that never belong in an audit entry, whatever a caller passes: exact
# names, and fragments that only secret-bearing names contain. Checked at every depth.
_FORBIDDEN_NAMES = {"value", "secret", "password", "token", "key", "material", "api_key",
                    "private_key", "refresh_token", "access_token", "client_secret"}
_FORBIDDEN_FRAGMENTS = ("secret", "password", "passphrase", "private_key", "_token")


def _secret_names(details: Any, path: str = "") -> list[str]:
    found = []
    if isinstance(details, dict):
        for name, value in details.items():
            lowered = str(name).lower()
            if lowered in _FORBIDDEN_NAMES or any(f in lowered for f in _FORBIDDEN_FRAGMENTS):
                found.append(f"{path}{name}")
            found += _secret_names(value, f"{path}{name}.")
    elif isinstance(details, list | tuple):
        for index, item in enumerate(details):
            found += _secret_names(item, f"{path}{index}.")
    return found


def _clean(details: dict[str, Any] | None) -> dict[str, Any]:
    details = dict(details or {})
    leaked = _secret_names(details)
    if leaked:
        raise ValueError(f"audit details must not carry secret material: {sorted(leaked)}")
    return details


def _entry(org_id: str, action: str, target_type: str | None, target_id: str | None,
           details: dict[str, Any] | None, outcome: str, principal=None) -> AuditEntry:
    principal = principal or (g.get("principal") if has_request_context() else None)
    entry = AuditEntry(
        org_id=org_id, action=action, target_type=target_type, target_id=target_id,
        details=_clean(details), outcome=outcome, request_id=current_request_id() or None)
    if principal is not None:
        entry.actor_user_id = principal.user_id
        entry.actor_email = principal.email
        entry.credential_shape = principal.shape.value
        entry.api_key_id = principal.api_key_id
    if has_request_context():
        entry.ip = request.remote_addr
        entry.user_agent = (request.user_agent.string or "")[:512] or None
    return entry


def record(org_id: str, action: str, target_type: str | None = None,
           target_id: str | None = None, details: dict[str, Any] | None = None,
           principal=None) -> AuditEntry:
    """Add a success entry to the current transaction (committed with the mutation)."""
    entry = _entry(org_id, action, target_type, target_id, details, "success", principal)
    db.session.add(entry)
    return entry


def record_denied(org_id: str, action: str, target_type: str | None = None,
                  target_id: str | None = None, details: dict[str, Any] | None = None,
                  principal=None) -> AuditEntry:
    """Commit a ``denied`` entry in a transaction of its own: whatever the denied request
    had started is rolled back first, so only the entry is committed."""
    db.session.rollback()
    entry = _entry(org_id, action, target_type, target_id, details, "denied", principal)
    db.session.add(entry)
    db.session.commit()
    return entry
