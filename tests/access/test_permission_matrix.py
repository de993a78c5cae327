"""Every /v1 route × every kind of caller gets the documented status and error code.

Generated from the route table: a new route without a declared scope and billing class
fails here, and new routes are covered just by existing."""

from __future__ import annotations

import re

import pytest

from evershell.access.routes import Billing, declarations
from evershell.access.scopes import ROLE_SCOPES, KeyTemplate, Role, template_scopes
from tests.factories import bearer, make_api_key, make_member, make_org

FAKE_ID = "zz_00000000000000000000000000"
CALLERS = ["owner", "operator", "member", "key_full", "key_read_only", "key_tasks_only"]


def _path(rule: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?[^>]+>", FAKE_ID, rule)


def _routes(app):
    return [(rule, method, decl) for rule, method, _endpoint, decl in declarations(app)]


def test_every_v1_route_declares_scopes_and_billing_class(app):
    missing = [f"{method} {rule}" for rule, method, decl in _routes(app) if decl is None]
    assert missing == []


def _caller(kind: str, org):
    """(headers, effective scopes) for a caller kind in ``org``."""
    role = {"owner": Role.OWNER, "operator": Role.OPERATOR, "member": Role.MEMBER,
            "key_full": Role.OWNER, "key_read_only": Role.OWNER,
            "key_tasks_only": Role.MEMBER}[kind]
    membership = make_member(org, role=role.value)
    if kind.startswith("key_"):
        template = KeyTemplate(kind.removeprefix("key_"))
        scopes = template_scopes(template, ROLE_SCOPES[role]) & ROLE_SCOPES[role]
        return bearer(make_api_key(membership, template=template.value)), scopes
    return bearer(make_api_key(membership, template="full", name=f"{kind} as self")), \
        ROLE_SCOPES[role]


def _call(client, method, rule, headers):
    kwargs = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return client.open(_path(rule), method=method, headers=headers, **kwargs)


@pytest.mark.parametrize("kind", CALLERS)
def test_each_caller_is_allowed_exactly_what_its_scopes_allow(app, client, kind):
    org = make_org()
    headers, scopes = _caller(kind, org)
    wrong = []
    for rule, method, decl in _routes(app):
        if decl.public:
            continue
        response = _call(client, method, rule, headers)
        code = (response.get_json(silent=True) or {}).get("error", {}).get("code")
        if decl.requires.satisfied_by(scopes):
            if response.status_code in (401, 403, 423) and code != "workspace_not_visible":
                wrong.append(f"{method} {rule}: allowed but got {response.status_code} {code}")
        elif (response.status_code, code) != (403, "permission_denied"):
            wrong.append(f"{method} {rule}: denied but got {response.status_code} {code}")
    assert wrong == []


@pytest.mark.parametrize("posture", ["past_due", "decommissioning", "expired_trial"])
def test_billing_posture_blocks_create_class_routes_only(app, client, session, posture):
    from datetime import UTC, datetime, timedelta
    org = make_org()
    headers, _ = _caller("owner", org)
    if posture == "expired_trial":
        org.billing_posture = "trial"
        org.trial_ends_at = datetime.now(UTC) - timedelta(days=1)
    else:
        org.billing_posture = posture
    session.flush()
    wrong = []
    for rule, method, decl in _routes(app):
        if decl.public:
            continue
        response = _call(client, method, rule, headers)
        code = (response.get_json(silent=True) or {}).get("error", {}).get("code")
        if decl.billing is Billing.CREATE:
            if (response.status_code, code) != (423, "billing_inactive"):
                wrong.append(f"{method} {rule}: create-class got {response.status_code}")
        elif response.status_code == 423:
            wrong.append(f"{method} {rule}: {decl.billing.value} route returned 423")
    assert wrong == []


def test_unauthenticated_calls_get_401_everywhere_but_public_routes(app, client):
    wrong = []
    for rule, method, decl in _routes(app):
        response = _call(client, method, rule, {})
        if decl.public:
            if response.status_code == 401:
                wrong.append(f"{method} {rule}: public route asked for a credential")
        elif response.status_code != 401 or \
                response.get_json()["error"]["code"] != "unauthenticated":
            wrong.append(f"{method} {rule}: got {response.status_code}")
    assert wrong == []


def test_another_orgs_caller_never_sees_this_orgs_objects(app, client, session):
    """Ids from org A named by a caller of org B are 404, as if they did not exist."""
    from evershell.apikeys.models import ApiKey
    org_a, org_b = make_org(), make_org()
    a_owner = make_member(org_a, role="owner")
    make_api_key(a_owner, name="a's key")
    key_id = session.query(ApiKey).filter_by(org_id=org_a.id).first().id
    headers, _ = _caller("owner", org_b)
    for method in ("GET", "DELETE"):
        response = client.open(f"/v1/api-keys/{key_id}", method=method, headers=headers)
        assert response.status_code == 404, (method, response.get_json())
        assert response.get_json()["error"]["code"] == "api_key_not_found"
