"""What the task runner gets: credentials resolved for the submitter (their own wins over
the org-wide one), and how the material reaches the sandbox."""

from __future__ import annotations

import pytest

from evershell.core.errors import EvershellError
from evershell.secrets.credentials import resolve_for_task
from evershell.secrets.redaction import Redactor
from tests.factories import make_member, make_org
from tests.secrets.factories import make_credential


def test_the_submitters_own_credential_wins_over_the_org_wide_one(org, owner):
    alice, bob = make_member(org), make_member(org)
    make_credential(owner, "GITHUB", material={"token": "org-token"}, scope="org")
    make_credential(alice, "GITHUB", material={"token": "alice-token"})
    for_alice = resolve_for_task(org.id, alice.user_id, ["GITHUB"])
    for_bob = resolve_for_task(org.id, bob.user_id, ["GITHUB"])
    assert for_alice["GITHUB"].fields == {"token": "alice-token"}
    assert for_alice["GITHUB"].scope == "user"
    assert for_bob["GITHUB"].fields == {"token": "org-token"}
    assert for_bob["GITHUB"].scope == "org"


def test_another_members_credential_is_never_used(org):
    alice, bob = make_member(org), make_member(org)
    make_credential(alice, "PERSONAL", material={"token": "alice-only"})
    with pytest.raises(EvershellError) as raised:
        resolve_for_task(org.id, bob.user_id, ["PERSONAL"])
    assert raised.value.code == "credential_not_found"
    assert raised.value.details == {"missing": ["PERSONAL"]}
    assert "alice-only" not in raised.value.message


def test_another_orgs_credentials_are_never_used(owner):
    make_credential(owner, "SHARED", scope="org")
    stranger = make_member(make_org(), role="owner")
    with pytest.raises(EvershellError):
        resolve_for_task(stranger.org_id, stranger.user_id, ["SHARED"])


def test_several_names_at_once_and_none_at_all(org, owner):
    make_credential(owner, "ONE", material={"token": "t1"}, scope="org")
    make_credential(owner, "TWO", kind="username_password",
                    material={"username": "u", "password": "p2"}, scope="org")
    resolved = resolve_for_task(org.id, owner.user_id, ["TWO", "ONE", "ONE"])
    assert sorted(resolved) == ["ONE", "TWO"]
    assert resolve_for_task(org.id, owner.user_id, []) == {}
    assert resolve_for_task(org.id, None, ["ONE"])["ONE"].fields == {"token": "t1"}


def test_material_becomes_environment_variables(owner):
    from tests.secrets.test_credentials_api import private_key
    key = private_key()
    make_credential(owner, "API", material={"token": "tok"})
    make_credential(owner, "DB", kind="username_password",
                    material={"username": "app", "password": "pw-123"})
    make_credential(owner, "DEPLOY", kind="ssh_key", material={"private_key": key})
    resolved = resolve_for_task(owner.org_id, owner.user_id, ["API", "DB", "DEPLOY"])
    assert resolved["API"].environment() == {"API": "tok"}
    assert resolved["DB"].environment() == {"DB_USERNAME": "app", "DB_PASSWORD": "pw-123"}
    assert resolved["DEPLOY"].environment() == {"DEPLOY": key}
    assert resolved["DB"].secret_parts() == ["pw-123"]  # a username is not hidden


def test_resolved_credentials_do_not_print_their_material(owner):
    make_credential(owner, "QUIET", material={"token": "never-in-a-repr"})
    resolved = resolve_for_task(owner.org_id, owner.user_id, ["QUIET"])
    assert "never-in-a-repr" not in repr(resolved) and "QUIET" in repr(resolved)


def test_resolved_material_feeds_the_redactor(owner):
    make_credential(owner, "DB", kind="username_password",
                    material={"username": "admin", "password": "pa55w0rd-xyz"})
    resolved = resolve_for_task(owner.org_id, owner.user_id, ["DB"])
    redactor = Redactor({name: c.secret_parts() for name, c in resolved.items()})
    assert redactor.redact("login admin / pa55w0rd-xyz") == "login admin / [secret:DB]"
