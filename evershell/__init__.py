"""Evershell: a self-hostable control plane for AI-agent workspaces."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from evershell.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict | None = None, *, http: bool = True) -> Flask:
    """Build the web/worker application; ``config`` overrides environment settings.

    ``http=False`` stops after the database and commands: no API, OpenAPI document or
    console, which are most of the start-up time (``evershell org create`` and the other
    admin commands use it; the web and worker processes never do).
    """
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(load_config(config))
    app.json.sort_keys = False

    from evershell.core.requests import configure_logging, init_request_ids
    configure_logging(app.config["LOG_LEVEL"])
    init_request_ids(app)

    from evershell import models  # noqa: F401  (every table registered before Alembic runs)
    from evershell.access import epochs
    epochs.install()
    from evershell.core.db import configure_sqlite
    from evershell.extensions import db, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        Path(app.config["INSTANCE_DIR"]).mkdir(parents=True, exist_ok=True)
        with app.app_context():
            configure_sqlite(db.engine, app.config["SQLITE_BUSY_TIMEOUT_MS"])
    if not http:
        from evershell.cli import register_commands
        register_commands(app)
        return app

    # One Api per app (flask-smorest binds an Api to a single app and spec).
    from evershell.access.openapi import contract_for
    from evershell.core.api import EvershellApi
    api = EvershellApi(contract=contract_for(app))
    api.init_app(app, spec_kwargs={"info": {"description": _API_DESCRIPTION}})
    app.extensions["evershell-api"] = api
    for blueprint in api_blueprints():
        api.register_blueprint(blueprint)

    from evershell.core.errors import register_error_handlers
    register_error_handlers(app)
    from evershell.core import inputs, stats
    inputs.init_app(app)
    stats.init_app(app)
    from evershell.access import web as access_web
    access_web.init_app(app)
    from evershell.console import nav
    nav.init_app(app)

    from evershell.core.health import blp as health_blp
    app.register_blueprint(health_blp)
    for blueprint in console_blueprints():
        app.register_blueprint(blueprint)
    from evershell.cli import register_commands
    register_commands(app)
    return app


def api_blueprints() -> list:
    """The ``/v1`` blueprints of every domain, in documentation order."""
    from evershell.apikeys.api import blp as api_keys
    from evershell.audit.api import blp as audit
    from evershell.members.api import blp as members
    from evershell.orgs.api import blp as org
    from evershell.packs.api import blp as packs
    from evershell.providers.api import blp as providers
    from evershell.roles.api import blp as roles
    from evershell.roles.api import capabilities_blp as capabilities
    from evershell.secrets.api import blp as secrets
    from evershell.secrets.api import credentials_blp as credentials
    from evershell.tasks.api import blp as tasks
    from evershell.workspaces.api import blp as workspaces
    return [org, members, api_keys, providers, roles, capabilities, packs, secrets,
            credentials, workspaces, tasks, audit]


def console_blueprints() -> list:
    """The console's blueprints (server-rendered pages)."""
    from evershell.access.views import auth
    from evershell.access.views import blp as access_views
    from evershell.apikeys.views import blp as apikeys_views
    from evershell.audit.views import blp as audit_views
    from evershell.console.views import blp as console
    from evershell.members.views import blp as members_views
    from evershell.orgs.views import blp as org_views
    from evershell.packs.views import blp as packs_views
    from evershell.providers.views import blp as providers_views
    from evershell.roles.views import blp as roles_views
    from evershell.secrets.views import blp as secrets_views
    from evershell.secrets.views import credentials_blp as credentials_views
    from evershell.tasks.views import blp as tasks_views
    from evershell.workspaces.views import blp as workspaces_views
    return [console, access_views, auth, members_views, apikeys_views, org_views,
            audit_views, providers_views, roles_views, packs_views, secrets_views,
            credentials_views, workspaces_views, tasks_views]


_API_DESCRIPTION = (
    "HTTP API for the Evershell control plane. Every request carries a bearer token "
    "(session JWT `eyJ...` or API key `sk_...`). Every error uses the envelope "
    '`{"error": {"code", "message", "request_id", "details"?}}`; `code` is a closed enum '
    "(see the `ErrorBody` schema). Validation errors are 400 `validation_error` with a "
    "per-field map at `details.fields`. Every request is held to the same input rules: "
    "non-empty bodies are `application/json` (uploads `multipart/form-data`; else 415), "
    "strict JSON (no number over 40 characters, no NaN, at most 64 levels of nesting), no "
    "NUL or lone surrogate in any text, integers within -2^31..2^31-1, a request line of "
    "at most 4094 bytes (414 `uri_too_long`) and at most 100 headers of 8190 bytes (431 "
    "`headers_too_large`)."
)
