"""The ``evershell`` command: Flask's CLI plus ``up``, ``worker``, ``org``, ``user``, ``config``.

``evershell db upgrade`` (and the rest of ``db``) comes from Flask-Migrate.

Start-up is kept short: our commands are attached to the group itself, so Click finds
them without building the app (``config`` never builds it), and every heavy import
(SQLAlchemy, the services, RQ, requests) happens inside the command that needs it.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from evershell import ROOT, create_app
from evershell.config import SETTINGS

UPGRADE_HINT = "run `evershell db upgrade`"


def _app_for_command():
    """The app of the command being run: ``up`` and the admin commands, which only touch
    the database, get one without the HTTP side (``create_app(http=False)``); every
    other command (db, worker, routes, shell, ...) the whole app."""
    context = click.get_current_context(silent=True)
    callback = context.command.callback if context is not None else None
    return create_app(http=not getattr(callback, "without_http", False))


def _without_http(command: Callable) -> Callable:
    """Mark a command whose app needs no HTTP side (read by ``_app_for_command``)."""
    command.without_http = True
    return command


@click.group(cls=FlaskGroup, create_app=_app_for_command, add_version_option=False)
def main() -> None:
    """Evershell control plane."""


def register_commands(app) -> None:
    """Attach our commands to ``app.cli`` too (so test runners of an app see them)."""
    for command in COMMANDS:
        app.cli.add_command(command)


def needs_database(command: Callable) -> Callable:
    """Run an admin ``command`` in an app context once the database is reachable and its
    schema is the code's; otherwise stop with one line naming the fix, never a traceback.

    The app has no HTTP side: a command that needs a service's start-up registrations
    (``secrets.usage``, say) imports that service itself.
    """

    @functools.wraps(command)
    def checked(*args, **kwargs):
        check_schema()
        return command(*args, **kwargs)

    return with_appcontext(_without_http(checked))


def check_schema() -> None:
    """Raise a one-line ``ClickException`` unless the database holds the current schema."""
    import sqlalchemy as sa
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from evershell.core.errors import EvershellError
    from evershell.extensions import db

    engine = db.engine
    where = engine.url.render_as_string(hide_password=True)
    if engine.url.get_backend_name() == "sqlite":
        path = engine.url.database
        if path and path != ":memory:" and not os.path.exists(path):
            # Connecting would create an empty file; say what to do instead.
            raise click.ClickException(f"no database at {path}: {UPGRADE_HINT}")
    try:
        # The session's own connection: on SQLite a second one would queue behind the
        # write lock the session's transaction may hold (core/db.py begins IMMEDIATE).
        current = set(MigrationContext.configure(db.session.connection()).get_current_heads())
        db.session.commit()
    except sa.exc.DBAPIError as exc:
        db.session.rollback()
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise click.ClickException(f"cannot reach the database {where}: {reason}") from None
    except EvershellError as exc:  # SQLite's write lock held too long by a server
        raise click.ClickException(f"{exc.code.value}: {exc.message}") from None
    if not current:
        raise click.ClickException(
            f"the database {where} has no Evershell schema yet: {UPGRADE_HINT}")
    scripts = ScriptDirectory(current_app.extensions["migrate"].directory)
    heads = set(scripts.get_heads())
    if current == heads:
        return
    try:
        for revision in current:
            scripts.get_revision(revision)
    except CommandError:
        raise click.ClickException(
            f"the database {where} is at schema {', '.join(sorted(current))}, newer than "
            "this Evershell's migrations: update Evershell") from None
    raise click.ClickException(
        f"the database {where} is at schema {', '.join(sorted(current))}, older than this "
        f"Evershell's {', '.join(sorted(heads))}: {UPGRADE_HINT}")


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
@needs_database
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
@needs_database
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
@needs_database
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
@needs_database
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
@needs_database
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
    """Run an RQ worker on the configured queues, with the reaper. RQ's scheduler is off:
    nothing is enqueued for later, and its forked process would outlive a killed worker.
    Refuses to start on a host that cannot run sandboxes (see `evershell doctor`)."""
    from evershell.core.worker import EvershellWorker, Reaper
    from evershell.extensions import get_redis
    from evershell.sandbox import doctor
    from evershell.sandbox.backend import HostNotReady
    check_schema()
    try:
        doctor.check_host(Path(current_app.config["SANDBOX_ROOT"]))
    except HostNotReady as exc:
        raise click.ClickException(f"{exc}\nRun `evershell doctor` for the details.") \
            from None
    # Work horses are forked per job: import what jobs run once, here, so no horse pays
    # for those imports (a few hundred ms of every task's start otherwise).
    import jobs.reaper  # noqa: F401
    import jobs.tasks  # noqa: F401
    import jobs.workspaces  # noqa: F401
    from evershell.providers.clients import load_sdks
    from evershell.tasks import runtime as _tasks_runtime  # noqa: F401
    load_sdks()
    from evershell.workspaces import runtime as _workspaces_runtime  # noqa: F401
    queues = current_app.config["QUEUES"]
    if not burst:
        Reaper(current_app._get_current_object(),
               current_app.config["REAPER_INTERVAL_SECONDS"]).start()
    EvershellWorker(queues, connection=get_redis()).work(burst=burst)


@click.command("gc")
@click.option("--retention-days", type=click.IntRange(min=0), default=None,
              help="Keep deleted workspaces' snapshots this long "
                   "(default EVERSHELL_SNAPSHOT_RETENTION_DAYS).")
@click.option("--verbose", "-v", is_flag=True, help="List every blob freed.")
@needs_database
def gc_command(retention_days: int | None, verbose: bool) -> None:
    """Free what nothing references: deleted workspaces past the retention and their
    snapshots, unreferenced snapshot and pack blobs, expired idempotency keys."""
    from evershell import gc

    freed = gc.collect(retention_days)
    if verbose:
        for line in freed.details:
            click.echo(f"  freed {line}")
    click.echo(f"Freed {freed.workspaces} deleted workspace(s) with {freed.snapshots} "
               f"snapshot record(s), {freed.snapshot_blobs} snapshot blob(s) and "
               f"{freed.pack_blobs} pack blob(s) ({freed.bytes:,} bytes), and "
               f"{freed.idempotency_keys} expired idempotency key(s).")


@click.command("doctor")
@with_appcontext
def doctor_command() -> None:
    """What this host uses to run sandboxes: bubblewrap, user namespaces, cgroups, and
    which mechanism enforces each limit. Exits non-zero when something is missing."""
    from evershell.sandbox import doctor

    rows = doctor.report()
    width = max(len(item) for item, _detail, _ok in rows)
    for item, detail, ok in rows:
        click.echo(f"{'ok  ' if ok else 'MISSING'.ljust(4)} {item.ljust(width)}  {detail}")
    if not all(ok for _item, _detail, ok in rows):
        raise SystemExit(1)


@click.command("up")
@click.option("--port", default=lambda: os.environ.get("PORT", "8000"), show_default="8000")
@click.option("--host", default="127.0.0.1", show_default=True)
@with_appcontext
@_without_http  # it only upgrades the database; its web and worker build their own apps
def up(port: str, host: str) -> None:
    """Run everything for local use, in the foreground: database upgrade, embedded Redis,
    local sign-in, web and worker. Ctrl-C stops them all (the web and worker first)."""
    import sqlalchemy as sa

    from evershell.core.embedded_redis import EmbeddedRedisError
    from evershell.core.supervisor import Supervisor
    from evershell.secrets.crypto import KeyConfigError

    supervisor = Supervisor()
    # Before anything starts: a Ctrl-C during start-up stops cleanly too.
    supervisor.install_signal_handlers()
    with _one_up_per_instance(current_app.config["INSTANCE_DIR"]):
        try:
            _start(supervisor, host, port)
            failed = _supervise(supervisor, f"http://{host}:{port}/")
        except (EmbeddedRedisError, KeyConfigError) as exc:
            raise click.ClickException(str(exc)) from None
        except sa.exc.DBAPIError as exc:
            reason = str(exc.orig or exc).strip().splitlines()[0]
            raise click.ClickException(f"cannot upgrade the database: {reason}") from None
        finally:
            supervisor.stop_all()
    if failed:
        raise click.ClickException(f"{failed} exited unexpectedly; everything was stopped")
    click.echo("Evershell stopped.")


def _start(supervisor, host: str, port: str) -> None:
    """Upgrade the database, then start each child unless a stop was asked for meanwhile."""
    from flask_migrate import upgrade

    from evershell.core import embedded_redis
    from evershell.secrets.crypto import derived_key_warning

    config = current_app.config
    instance_dir = config["INSTANCE_DIR"]
    warning = derived_key_warning(current_app)  # a malformed key ring stops us here
    upgrade()
    if warning:
        click.echo(f"Warning: {warning}", err=True)
    if config.get("DEMO", True):
        from evershell.demo import ROLE_NAME, ensure_demo
        demo_owner = ensure_demo()
        if demo_owner:
            click.echo(f"Created a demo org (no org existed): sign in as {demo_owner} and "
                       f"submit a task with a text file to the role {ROLE_NAME!r}; it runs "
                       f"offline, with no model API key.")
    env = dict(os.environ, EVERSHELL_INSTANCE_DIR=instance_dir)
    if not config.get("REDIS_URL") and not supervisor.stop_requested:
        if embedded_redis.answering(instance_dir):
            # Left running in the background by a process started outside `up`; `up`
            # runs its own in the foreground, so that Ctrl-C leaves nothing behind.
            click.echo("Stopping the embedded Redis left running in the background.")
            embedded_redis.shutdown(instance_dir)
        redis_child = embedded_redis.ensure_running(
            instance_dir, daemonize=False, popen_kwargs=supervisor.popen_kwargs())
        if redis_child is not None:
            supervisor.adopt("redis", redis_child)
        # The children use this one, and never start a background Redis of their own.
        env["REDIS_URL"] = embedded_redis.url_for(instance_dir)
    exe = os.path.dirname(sys.executable)
    if not config.get("WORKOS_CLIENT_ID") and not supervisor.stop_requested:
        _start_localauth(supervisor, env)
    if not supervisor.stop_requested:
        supervisor.spawn("web", [
            os.path.join(exe, "gunicorn"), "--chdir", str(ROOT), "-k", "evershell.server.Worker",
            "-w", os.environ.get("WEB_CONCURRENCY", "2"), "-b", f"{host}:{port}",
            # Open event streams must not hold a Ctrl-C for gunicorn's default 30 s.
            "--graceful-timeout", "5", "--access-logfile", "-", "app:app"], env)
    if not supervisor.stop_requested:
        supervisor.spawn("worker", [os.path.join(exe, "evershell"), "worker"], env,
                         second_sigterm=True)


def _start_localauth(supervisor, env: dict[str, str]) -> None:
    """The local AuthKit-protocol server, when no AuthKit is configured."""
    from urllib.parse import urlsplit
    url = urlsplit(current_app.config["LOCALAUTH_URL"])
    local_env = dict(env, LOCALAUTH_HOST=url.hostname or "127.0.0.1",
                     LOCALAUTH_PORT=str(url.port or 8765),
                     LOCALAUTH_ISSUER=current_app.config["LOCALAUTH_URL"],
                     LOCALAUTH_KEY_FILE=os.path.join(current_app.config["INSTANCE_DIR"],
                                                     "localauth-key.pem"))
    supervisor.spawn("localauth", [sys.executable, "-m", "evershell.localauth"], local_env)
    click.echo(f"Local sign-in (no AuthKit configured): {current_app.config['LOCALAUTH_URL']}")


def _supervise(supervisor, url: str) -> str | None:
    """Announce the URL once the web process answers; return when a stop is asked for
    (Ctrl-C, SIGTERM, SIGHUP) or with the name of the first child that exited."""
    import requests
    announced = False
    while not supervisor.stop_requested:
        failed = supervisor.exited()
        if failed:
            return failed
        if not announced:
            try:
                # Long enough for a booting worker: each timed-out probe would still be
                # answered later, and fill the access log.
                announced = requests.get(url + "health", timeout=3).ok
            except requests.RequestException:
                pass
            if announced:
                click.echo(f"Evershell is up: {url}  (runs in the foreground; "
                           "Ctrl-C stops everything)")
        supervisor.sleep(0.5)
    click.echo("Stopping Evershell…")
    return None


@contextmanager
def _one_up_per_instance(instance_dir: str) -> Iterator[None]:
    """Refuse a second `evershell up` on the same instance dir (it would share the Redis
    socket and the SQLite file, and stop the other's Redis)."""
    import fcntl
    os.makedirs(instance_dir, exist_ok=True)
    with open(os.path.join(instance_dir, "up.lock"), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            raise click.ClickException(
                f"evershell up is already running for {instance_dir} (pid {holder})") from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        yield


COMMANDS = (show_config, org, user, apikey, secrets_group, worker, doctor_command, gc_command,
            up)
for _command in COMMANDS:
    main.add_command(_command)
