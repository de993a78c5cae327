"""Bootstrap commands work before any identity provider is configured."""

import sqlalchemy as sa

from evershell.access.models import Membership, User
from evershell.core.ids import is_id
from evershell.orgs.models import Org


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_org_create_prints_the_new_id(app, session):
    result = run(app, "org", "create", "--name", "Acme", "--slug", "acme")
    assert result.exit_code == 0, result.output
    org_id = result.output.strip()
    assert is_id(org_id, "org")
    assert session.get(Org, org_id).slug == "acme"


def test_org_create_refuses_a_taken_or_malformed_slug(app, session):
    assert run(app, "org", "create", "--name", "A", "--slug", "taken").exit_code == 0
    again = run(app, "org", "create", "--name", "B", "--slug", "taken")
    assert again.exit_code != 0 and "slug_taken" in again.output
    bad = run(app, "org", "create", "--name", "C", "--slug", "-nope-")
    assert bad.exit_code != 0 and "validation_error" in bad.output
    assert session.scalar(sa.select(sa.func.count()).select_from(Org)) == 1


def test_user_add_creates_user_and_membership(app, session):
    run(app, "org", "create", "--name", "Acme", "--slug", "acme")
    result = run(app, "user", "add", "--org", "acme", "--email", "Ann@Acme.Test",
                 "--role", "owner")
    assert result.exit_code == 0, result.output
    user = session.get(User, result.output.strip())
    assert user.email == "ann@acme.test"
    membership = session.scalar(sa.select(Membership).where(Membership.user_id == user.id))
    assert membership.role == "owner"


def test_user_add_refuses_unknown_org_duplicate_member_and_bad_role(app):
    assert "org_not_found" in run(app, "user", "add", "--org", "ghost", "--email", "a@b.test",
                                  "--role", "member").output
    run(app, "org", "create", "--name", "Acme", "--slug", "acme")
    assert run(app, "user", "add", "--org", "acme", "--email", "a@b.test",
               "--role", "member").exit_code == 0
    dup = run(app, "user", "add", "--org", "acme", "--email", "A@B.test", "--role", "member")
    assert dup.exit_code != 0 and "already_member" in dup.output
    assert run(app, "user", "add", "--org", "acme", "--email", "c@b.test",
               "--role", "admin").exit_code != 0


def test_secrets_rotate_key_reencrypts_under_the_new_first_key(app, session, monkeypatch):
    import base64

    from evershell.secrets import services as secrets
    from evershell.secrets.models import Secret
    from tests.factories import make_member, principal_for
    owner = make_member(role="owner")
    secret = secrets.create(principal_for(owner), "ROTATED", "value-1")
    session.commit()
    old_key = secret.key_id
    new = base64.b64encode(b"k" * 32).decode()
    monkeypatch.setitem(app.config, "SECRETS_KEYS", f"k2:{new}")
    result = run(app, "secrets", "rotate-key")
    assert result.exit_code == 0, result.output
    assert "1 secrets re-encrypted" in result.output
    session.expire_all()
    row = session.get(Secret, secret.id)
    assert row.key_id == "k2" != old_key
    assert secrets.secret_values(owner.org_id, ["ROTATED"])["ROTATED"] == "value-1"
