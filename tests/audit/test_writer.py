"""The writer refuses secret-bearing details at any depth, and keeps harmless ones."""

import pytest

from evershell.audit import services as audit
from tests.factories import make_member, principal_for


@pytest.mark.parametrize("details", [
    {"token": "x"},
    {"client_secret": "x"},
    {"config": {"password": "x"}},
    {"steps": [{"refresh_token": "x"}]},
    {"SSH_Private_Key": "x"},
])
def test_secret_bearing_details_are_refused(app, details):
    member = make_member(role="owner")
    with pytest.raises(ValueError):
        audit.record(member.org_id, "thing.do", details=details, principal=principal_for(member))


def test_harmless_details_pass(app, session):
    member = make_member(role="owner")
    entry = audit.record(member.org_id, "member.remove", details={
        "api_keys_revoked": 2, "sessions_ended": 1, "role": ["member", "owner"]},
        principal=principal_for(member))
    session.flush()
    assert entry.details["api_keys_revoked"] == 2
