"""Every Evershell setting, read from the environment, with its default.

The README's configuration table is generated from ``SETTINGS`` (``evershell config``),
so a setting added here is documented in one place.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    env: str
    default: str
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("EVERSHELL_INSTANCE_DIR", "./instance",
            "Local state: the SQLite file, the embedded Redis socket and data, generated keys."),
    Setting("DATABASE_URL", "sqlite:///<instance>/evershell.db",
            "SQLAlchemy URL. postgresql://user@host/db selects PostgreSQL (driver psycopg 3)."),
    Setting("REDIS_URL", "(embedded)",
            "redis://host:port/db. Unset: Evershell starts Debian's redis-server on a unix "
            "socket under the instance dir, shared by web and worker."),
    Setting("SECRET_KEY", "(generated into <instance>/secret_key)",
            "Flask session and CSRF signing key; set it explicitly when running several "
            "web nodes."),
    Setting("PORT", "8000", "Port the web process binds."),
    Setting("WEB_CONCURRENCY", "2", "gunicorn worker processes (gevent workers, for SSE)."),
    Setting("EVERSHELL_BASE_DOMAIN", "",
            "When set, <slug>.<base domain> hosts name an org explicitly (SPEC §3)."),
    Setting("EVERSHELL_MAX_BODY_BYTES", str(64 * 1024 * 1024),
            "Largest request body accepted; larger bodies get 413 payload_too_large."),
    Setting("EVERSHELL_SQLITE_BUSY_TIMEOUT_MS", "5000",
            "How long a SQLite writer waits for the lock before failing."),
    Setting("EVERSHELL_LOG_LEVEL", "INFO", "Python log level for the evershell loggers."),
    Setting("EVERSHELL_QUEUES", "workspaces,tasks,default",
            "RQ queues a worker listens on, in priority order."),
)


def env(name: str) -> str | None:
    """The environment value of ``name``; empty strings count as unset."""
    value = os.environ.get(name, "").strip()
    return value or None


def _default_for(name: str) -> str:
    return next(s.default for s in SETTINGS if s.env == name)


def _persistent_secret(path: Path) -> str:
    """A random key kept in the instance dir, so restarts keep sessions valid."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def normalise_database_url(url: str) -> str:
    """Map the URL schemes operators type to the drivers we ship (psycopg 3)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def load_config(overrides: dict | None = None) -> dict:
    """Build the Flask config mapping from the environment plus ``overrides``."""
    overrides = dict(overrides or {})
    instance_dir = Path(
        overrides.pop("INSTANCE_DIR", None) or env("EVERSHELL_INSTANCE_DIR")
        or _default_for("EVERSHELL_INSTANCE_DIR")
    ).resolve()
    database_url = overrides.pop("DATABASE_URL", None) or env("DATABASE_URL") \
        or f"sqlite:///{instance_dir / 'evershell.db'}"
    config = {
        "INSTANCE_DIR": str(instance_dir),
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url),
        "REDIS_URL": env("REDIS_URL"),
        "SECRET_KEY": env("SECRET_KEY"),
        "BASE_DOMAIN": env("EVERSHELL_BASE_DOMAIN"),
        "MAX_CONTENT_LENGTH": int(env("EVERSHELL_MAX_BODY_BYTES")
                                  or _default_for("EVERSHELL_MAX_BODY_BYTES")),
        "SQLITE_BUSY_TIMEOUT_MS": int(env("EVERSHELL_SQLITE_BUSY_TIMEOUT_MS")
                                      or _default_for("EVERSHELL_SQLITE_BUSY_TIMEOUT_MS")),
        "LOG_LEVEL": env("EVERSHELL_LOG_LEVEL") or _default_for("EVERSHELL_LOG_LEVEL"),
        "QUEUES": (env("EVERSHELL_QUEUES") or _default_for("EVERSHELL_QUEUES")).split(","),
        # flask-smorest: OpenAPI 3.1 at /v1/openapi.json, Swagger UI at /v1/docs from static/.
        "API_TITLE": "Evershell",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": "/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": "/static/vendor/swagger-ui/",
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "JSON_SORT_KEYS": False,
    }
    config.update(overrides)
    if not config["SECRET_KEY"]:
        config["SECRET_KEY"] = _persistent_secret(Path(config["INSTANCE_DIR"]) / "secret_key")
    return config
