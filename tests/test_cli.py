"""Bootstrap commands work before any identity provider is configured, from any
directory, and say in one line what to do when the database is not ready."""

import os
import sqlite3
import subprocess

import pytest
import sqlalchemy as sa

from evershell.access.models import Membership, User
from evershell.config import load_config
from evershell.core.ids import is_id
from evershell.orgs.models import Org
from tests.support.databases import sibling_database
from tests.support.processes import BIN, ROOT, evershell_env


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


# --- as a user runs them: real processes, from wherever the shell happens to be ------------

def _evershell(*args: str, env: dict[str, str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "evershell"), *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def _user_env(**settings: str) -> dict[str, str]:
    env = evershell_env(SECRET_KEY="cli-test-secret-key", **settings)
    for name in ("DATABASE_URL", "REDIS_URL", "EVERSHELL_INSTANCE_DIR",
                 "EVERSHELL_SECRETS_KEYS"):
        if name not in settings:
            env.pop(name, None)
    return env


def test_the_instance_dir_is_the_projects_whatever_the_working_directory(
        tmp_path, monkeypatch):
    monkeypatch.delenv("EVERSHELL_INSTANCE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load_config({"SECRET_KEY": "x"})["INSTANCE_DIR"] == str(ROOT / "instance")
    monkeypatch.setenv("EVERSHELL_INSTANCE_DIR", "here")
    assert load_config({"SECRET_KEY": "x"})["INSTANCE_DIR"] == str(tmp_path / "here")


def test_a_command_run_from_another_directory_leaves_nothing_there(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _user_env(DATABASE_URL=f"sqlite:///{tmp_path / 'evershell.db'}")
    result = _evershell("org", "create", "--name", "Acme", "--slug", "acme", env=env,
                        cwd=elsewhere)
    assert result.returncode != 0
    assert list(elsewhere.iterdir()) == [], "a stray instance dir in the working directory"
    assert "evershell db upgrade" in result.stderr


@pytest.mark.parametrize("command", [
    ["org", "create", "--name", "Acme", "--slug", "acme"],
    ["org", "set-billing", "acme", "active"],
    ["user", "add", "--org", "acme", "--email", "ann@acme.test", "--role", "owner"],
    ["apikey", "create", "--org", "acme", "--user", "ann@acme.test", "--name", "cli"],
    ["secrets", "rotate-key"],
    ["worker", "--burst"],
])
def test_a_missing_schema_is_one_line_naming_db_upgrade(tmp_path, command):
    env = _user_env(EVERSHELL_INSTANCE_DIR=str(tmp_path))
    result = _evershell(*command, env=env, cwd=tmp_path)
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: no database at {tmp_path / 'evershell.db'}: run `evershell db upgrade`"]
    assert not (tmp_path / "evershell.db").exists(), "the check made an empty database"


def test_an_empty_database_is_one_line_naming_db_upgrade(tmp_path):
    url = sibling_database(os.environ.get("DATABASE_URL"), "cli_empty", tmp_path)
    if url.startswith("sqlite"):
        sqlite3.connect(tmp_path / "cli_empty.db").close()  # an empty file, no tables
    env = _user_env(EVERSHELL_INSTANCE_DIR=str(tmp_path), DATABASE_URL=url)
    result = _evershell("user", "add", "--org", "acme", "--email", "ann@acme.test",
                        "--role", "owner", env=env, cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "has no Evershell schema yet: run `evershell db upgrade`" in lines[0]


def test_admin_commands_say_nothing_about_the_secrets_key_ring(tmp_path):
    """The EVERSHELL_SECRETS_KEYS warning is `up`'s to give (tests/e2e/test_up.py)."""
    env = _user_env(EVERSHELL_INSTANCE_DIR=str(tmp_path))
    outputs = []
    for command in (["db", "upgrade"],
                    ["org", "create", "--name", "Acme", "--slug", "acme"],
                    ["user", "add", "--org", "acme", "--email", "ann@acme.test",
                     "--role", "owner"],
                    ["secrets", "rotate-key"],
                    ["config"]):
        result = _evershell(*command, env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
    assert not any("EVERSHELL_SECRETS_KEYS is not set" in output for output in outputs)
    assert "0 secrets re-encrypted" in outputs[3]  # it built the key ring, silently


@pytest.mark.parametrize(("revision", "says"), [
    ("418189858682", "older than this Evershell's"),  # the first migration
    ("0123456789ab", "newer than this Evershell's migrations: update Evershell"),
])
def test_a_schema_of_another_version_is_one_line(tmp_path, revision, says):
    with sqlite3.connect(tmp_path / "evershell.db") as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        connection.execute("INSERT INTO alembic_version VALUES (?)", (revision,))
    env = _user_env(EVERSHELL_INSTANCE_DIR=str(tmp_path))
    result = _evershell("org", "create", "--name", "Acme", "--slug", "acme", env=env,
                        cwd=tmp_path)
    assert result.returncode != 0
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert f"is at schema {revision}, {says}" in result.stderr
