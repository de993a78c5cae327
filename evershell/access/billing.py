"""Billing posture (SPEC §4), enforced in one place from each route's billing class."""

from __future__ import annotations

from evershell.core.db import utcnow
from evershell.core.errors import ErrorCode, EvershellError
from evershell.orgs.models import BillingPosture, Org


def can_create(org: Org) -> bool:
    """Active, or a trial that has not ended."""
    if org.billing_posture == BillingPosture.ACTIVE:
        return True
    if org.billing_posture == BillingPosture.TRIAL:
        return org.trial_ends_at is None or org.trial_ends_at > utcnow()
    return False


def ensure_can_create(org: Org) -> None:
    if not can_create(org):
        posture = org.billing_posture
        if posture == BillingPosture.TRIAL:
            posture = "trial expired"
        raise EvershellError(
            ErrorCode.BILLING_INACTIVE,
            f"The organisation's billing posture ({posture}) does not allow creating or "
            "changing resources; reads, stops, archives and deletes still work.", 423,
            {"billing_posture": org.billing_posture})
