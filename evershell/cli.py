"""The ``evershell`` command: Flask's CLI plus ``up``, ``worker``, ``org``, ``user``, ``config``.

``evershell db upgrade`` (and the rest of ``db``) comes from Flask-Migrate.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from evershell import ROOT, create_app
from evershell.config import SETTINGS


@click.group(cls=FlaskGroup, create_app=create_app, add_version_option=False)
def main() -> None:
    """Evershell control plane."""


def register_commands(app) -> None:
    """Attach our commands to ``app.cli`` (so ``evershell`` and test runners see them)."""
    for command in (show_config, org, user, apikey, secrets_group, worker, up):
        app.cli.add_command(command)


def _fail(exc: Exception) -> None:
    from evershell.core.errors import EvershellError
    if isinstance(exc, EvershellError):
        details = f" {exc.details}" if exc.details else ""
        raise click.ClickException(f"{exc.code.value}: {exc.message}{details}")
    raise exc


@click.command("config")
def show_config() -> None:
    """Print every setting, its environment variable and default."""
    for setting in SETTINGS:
        click.echo(f"{setting.env}={setting.default}\n    {setting.help}")


@click.group()
def org() -> None:
    """Manage organisations."""


@org.command("create")
@click.option("--name", required=True)
@click.option("--slug", required=True)
@with_appcontext
def org_create(name: str, slug: str) -> None:
    """Create an org and print its id."""
    from evershell.extensions import db
    from evershell.orgs import services
    try:
        created = services.create_org(name, slug)
        db.session.commit()
    except Exception as exc:  # noqa: BLE001 - re-raised as a CLI error below
        db.session.rollback()
        _fail(exc)
    click.echo(created.id)


@org.command("set-billing")
@click.argument("org_ref")
@click.argument("posture", type=click.Choice(["active", "trial", "past_due", "decommissioning"]))
@click.option("--trial-ends", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              default=None, help="UTC date (or date-time) a trial ends")
@with_appcontext
def org_set_billing(org_ref: str, posture: str, trial_ends) -> None:
    """Set an org's billing posture."""
    from datetime import UTC

    from evershell.extensions import db
    from evershell.orgs import services
    try:
        target = services.set_billing(services.get_org(org_ref), posture,
                                      trial_ends.replace(tzinfo=UTC) if trial_ends else None)
        db.session.commit()
    except Exception as exc:  # noqa: BLE001
        db.session.rollback()
        _fail(exc)
    click.echo(f"{target.slug}: {target.billing_posture}")


@click.group()
def apikey() -> None:
    """Manage API keys."""


@apikey.command("create")
@click.option("--org", "org_ref", required=True, help="org id or slug")
@click.option("--user", "user_ref", required=True, help="the key's creator: email or user id")
@click.option("--name", required=True)
@click.option("--template", default="full", show_default=True,
              type=click.Choice(["full", "read_only", "tasks_only"]))
@with_appcontext
def apikey_create(org_ref: str, user_ref: str, name: str, template: str) -> None:
    """Create an API key for a member and print the secret (shown once)."""
    from evershell.access import services as access
    from evershell.access.authn import build_principal
    from evershell.access.principal import CredentialShape
    from evershell.apikeys import services as api_keys
    from evershell.extensions import db
    from evershell.orgs import services as orgs
    try:
        target = orgs.get_org(org_ref)
        creator = access.get_user(user_ref)
        actor = build_principal(creator, target, CredentialShape.CLI)
        _key, secret = api_keys.create(actor, name, template=template)
        db.session.commit()
    except Exception as exc:  # noqa: BLE001
        db.session.rollback()
        _fail(exc)
    click.echo(secret)


@click.group("secrets")
def secrets_group() -> None:
    """Manage the secrets key ring."""


@secrets_group.command("rotate-key")
@with_appcontext
def secrets_rotate_key() -> None:
    """Re-encrypt every secret and credential under the first key of
    EVERSHELL_SECRETS_KEYS (put the new key first, run this, then drop old keys)."""
    from evershell.secrets import services
    done = services.reencrypt_all()
    click.echo(", ".join(f"{count} {kind} re-encrypted" for kind, count in done.items())
               or "nothing to re-encrypt")


@click.group()
def user() -> None:
    """Manage users."""


@user.command("add")
@click.option("--org", "org_ref", required=True, help="org id or slug")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(["owner", "operator", "member"]))
@click.option("--name", default=None)
@with_appcontext
def user_add(org_ref: str, email: str, role: str, name: str | None) -> None:
    """Add a user (created if new) to an org and print the user id."""
    from evershell.access import services as access
    from evershell.extensions import db
    from evershell.orgs import services as orgs
    try:
        membership = access.add_member(orgs.get_org(org_ref), email, role, name)
        db.session.commit()
    except Exception as exc:  # noqa: BLE001
        db.session.rollback()
        _fail(exc)
    click.echo(membership.user_id)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Process what is queued, then exit.")
@with_appcontext
def worker(burst: bool) -> None:
    """Run an RQ worker on the configured queues (scheduler on)."""
    from rq import Worker

    from evershell.extensions import get_redis
    queues = current_app.config["QUEUES"]
    Worker(queues, connection=get_redis()).work(with_scheduler=True, burst=burst)


@click.command("up")
@click.option("--port", default=lambda: os.environ.get("PORT", "8000"), show_default="8000")
@click.option("--host", default="127.0.0.1", show_default=True)
@with_appcontext
def up(port: str, host: str) -> None:
    """Run everything for local use: database upgrade, embedded Redis, web and worker."""
    from flask_migrate import upgrade

    from evershell.core import embedded_redis

    upgrade()
    env = dict(os.environ, EVERSHELL_INSTANCE_DIR=current_app.config["INSTANCE_DIR"])
    children: list[tuple[str, subprocess.Popen]] = []
    if not current_app.config.get("REDIS_URL"):
        redis_child = embedded_redis.ensure_running(
            current_app.config["INSTANCE_DIR"], daemonize=False)
        if redis_child is not None:
            children.append(("redis", redis_child))
    exe = os.path.dirname(sys.executable)
    if not current_app.config.get("WORKOS_CLIENT_ID"):
        children.append(("localauth", _start_localauth(env)))
    children.append(("web", subprocess.Popen([
        os.path.join(exe, "gunicorn"), "--chdir", str(ROOT), "-k", "gevent",
        "-w", os.environ.get("WEB_CONCURRENCY", "2"), "-b", f"{host}:{port}",
        "--access-logfile", "-", "app:app"], env=env)))
    children.append(("worker", subprocess.Popen(
        [os.path.join(exe, "evershell"), "worker"], env=env)))
    _supervise(children, f"http://{host}:{port}/")


def _start_localauth(env: dict[str, str]) -> subprocess.Popen:
    """The local AuthKit-protocol server, when no AuthKit is configured."""
    from urllib.parse import urlsplit
    url = urlsplit(current_app.config["LOCALAUTH_URL"])
    local_env = dict(env, LOCALAUTH_HOST=url.hostname or "127.0.0.1",
                     LOCALAUTH_PORT=str(url.port or 8765),
                     LOCALAUTH_ISSUER=current_app.config["LOCALAUTH_URL"],
                     LOCALAUTH_KEY_FILE=os.path.join(current_app.config["INSTANCE_DIR"],
                                                     "localauth-key.pem"))
    child = subprocess.Popen([sys.executable, "-m", "evershell.localauth"], env=local_env)
    click.echo(f"Local sign-in (no AuthKit configured): {current_app.config['LOCALAUTH_URL']}")
    return child


def _supervise(children: list[tuple[str, subprocess.Popen]], url: str) -> None:
    """Announce the URL once the web process answers; wait until Ctrl-C/SIGTERM or a
    child dies, then stop every child, web first."""
    import requests
    stopping = False
    announced = False

    def _stop(_signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    failed = None
    while not stopping:
        if not announced:
            try:
                announced = requests.get(url + "health", timeout=0.5).ok
            except requests.RequestException:
                pass
            if announced:
                click.echo(f"Evershell is up: {url}  (Ctrl-C stops everything)")
        for name, child in children:
            if child.poll() is not None:
                failed = name
                stopping = True
                break
        time.sleep(0.2)
    for _name, child in reversed(children):
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + 15
    for _name, child in reversed(children):
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    if failed:
        raise click.ClickException(f"{failed} exited unexpectedly; everything was stopped")
    click.echo("Evershell stopped.")
