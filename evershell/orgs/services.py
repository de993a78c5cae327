"""Organisation actions."""

from __future__ import annotations

import re

import sqlalchemy as sa

from evershell.core.errors import ErrorCode, EvershellError, validation_error
from evershell.extensions import db
from evershell.orgs.models import Org

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def validate_slug(slug: str) -> str:
    if not SLUG_PATTERN.match(slug or ""):
        raise validation_error({"slug": [
            "Use 1-63 lowercase letters, digits and inner hyphens (it becomes a host name)."]})
    return slug


def create_org(name: str, slug: str) -> Org:
    """Create an organisation; the slug is unique and host-name safe."""
    name = (name or "").strip()
    if not name:
        raise validation_error({"name": ["Name is required."]})
    slug = validate_slug((slug or "").strip().lower())
    if db.session.scalar(sa.select(Org.id).where(Org.slug == slug)):
        raise EvershellError(ErrorCode.SLUG_TAKEN, f"The slug {slug!r} is already taken.", 409)
    org = Org(name=name, slug=slug)
    db.session.add(org)
    db.session.flush()
    from evershell.audit import services as audit
    audit.record(org.id, "org.create", "org", org.id, {"name": name, "slug": slug})
    return org


def get_org(org_ref: str) -> Org:
    """An org by id or slug."""
    org = db.session.get(Org, org_ref) or db.session.scalar(
        sa.select(Org).where(Org.slug == org_ref))
    if org is None:
        raise EvershellError(ErrorCode.ORG_NOT_FOUND, f"No org {org_ref!r}.", 404)
    return org


def update_org(actor, changes: dict) -> Org:
    """Apply ``changes`` (name) to the actor's org, audited."""
    from evershell.audit import services as audit
    org = get_org(actor.org_id)
    if "name" in changes:
        name = changes["name"].strip()
        if not name:
            raise validation_error({"name": ["Name is required."]})
        if name != org.name:
            audit.record(org.id, "org.update", "org", org.id, {"name": [org.name, name]},
                         principal=actor)
            org.name = name
    return org


def set_billing(org: Org, posture: str, trial_ends_at=None) -> Org:
    """Set the billing posture (operator action, from the CLI)."""
    from evershell.audit import services as audit
    from evershell.orgs.models import BillingPosture
    try:
        value = BillingPosture(posture)
    except ValueError:
        raise validation_error({"posture": [
            f"Must be one of: {', '.join(p.value for p in BillingPosture)}."]}) from None
    if value is BillingPosture.TRIAL and trial_ends_at is None:
        raise validation_error({"trial_ends_at": ["A trial needs an end date."]})
    org.billing_posture = value.value
    org.trial_ends_at = trial_ends_at if value is BillingPosture.TRIAL else None
    audit.record(org.id, "org.set_billing", "org", org.id,
                 {"billing_posture": value.value,
                  "trial_ends_at": trial_ends_at.isoformat() if trial_ends_at else None})
    return org
