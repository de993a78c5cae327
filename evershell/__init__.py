"""Evershell: a self-hostable control plane for AI-agent workspaces."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from evershell.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict | None = None) -> Flask:
    """Build the web/worker application; ``config`` overrides environment settings."""
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
    from evershell.core.api import EvershellApi
    from evershell.core.db import configure_sqlite
    from evershell.extensions import db, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        Path(app.config["INSTANCE_DIR"]).mkdir(parents=True, exist_ok=True)
        with app.app_context():
            configure_sqlite(db.engine, app.config["SQLITE_BUSY_TIMEOUT_MS"])
    # One Api per app (flask-smorest binds an Api to a single app and spec).
    api = EvershellApi()
    api.init_app(app, spec_kwargs={"info": {"description": _API_DESCRIPTION}})
    app.extensions["evershell-api"] = api
    for blueprint in api_blueprints():
        api.register_blueprint(blueprint)

    from evershell.core.errors import register_error_handlers
    register_error_handlers(app)
    from evershell.access import web as access_web
    access_web.init_app(app)
    from evershell.console import nav
    nav.init_app(app)

    from evershell.core.health import blp as health_blp
    app.register_blueprint(health_blp)
    from evershell.console.views import blp as console_blp
    app.register_blueprint(console_blp)
    from evershell.access.views import auth as auth_blp
    from evershell.access.views import blp as access_views_blp
    app.register_blueprint(access_views_blp)
    from evershell.members.views import blp as members_views_blp
    app.register_blueprint(members_views_blp)
    app.register_blueprint(auth_blp)
    from evershell.apikeys.views import blp as apikeys_views_blp
    app.register_blueprint(apikeys_views_blp)
    from evershell.orgs.views import blp as org_views_blp
    app.register_blueprint(org_views_blp)
    from evershell.cli import register_commands
    register_commands(app)
    return app


def api_blueprints() -> list:
    """The ``/v1`` blueprints of every domain, in documentation order."""
    from evershell.apikeys.api import blp as api_keys
    from evershell.members.api import blp as members
    from evershell.orgs.api import blp as org
    return [org, members, api_keys]


_API_DESCRIPTION = (
    "HTTP API for the Evershell control plane. Every request carries a bearer token "
    "(session JWT `eyJ...` or API key `sk_...`). Every error uses the envelope "
    '`{"error": {"code", "message", "request_id", "details"?}}`; `code` is a closed enum '
    "(see the `ErrorBody` schema). Validation errors are 400 `validation_error` with a "
    "per-field map at `details.fields`."
)
