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
    Setting("EVERSHELL_INSTANCE_DIR", "<project>/instance",
            "Local state: the SQLite file, the embedded Redis socket and data, generated keys. "
            "The default is found from the code's location, never the working directory: "
            "instance/ next to the evershell package in a checkout (pip install -e), else "
            "$XDG_DATA_HOME/evershell (~/.local/share/evershell)."),
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
    Setting("EVERSHELL_MAX_BODY_BYTES", str(128 * 1024 * 1024),
            "Largest request body accepted; larger bodies get 413 payload_too_large."),
    Setting("EVERSHELL_SQLITE_BUSY_TIMEOUT_MS", "5000",
            "How long a SQLite writer waits for the lock before failing."),
    Setting("EVERSHELL_LOG_LEVEL", "INFO", "Python log level for the evershell loggers."),
    Setting("EVERSHELL_QUEUES", "workspaces,tasks,default",
            "RQ queues a worker listens on, in priority order."),
    Setting("EVERSHELL_PUBLIC_URL", "http://127.0.0.1:<PORT>",
            "The console's own URL, used for the sign-in redirect URI and same-origin checks."),
    Setting("WORKOS_CLIENT_ID", "",
            "AuthKit client id. Unset: Evershell's local AuthKit-protocol server signs people in."),
    Setting("WORKOS_API_KEY", "", "AuthKit API key (the client secret of the code exchange)."),
    Setting("WORKOS_API_BASE", "https://api.workos.com", "AuthKit API base URL."),
    Setting("AUTHKIT_ISSUERS", "<WORKOS_API_BASE>,<WORKOS_API_BASE>/user_management/<client id>",
            "Comma list of accepted `iss` values of session JWTs."),
    Setting("EVERSHELL_LOCALAUTH_URL", "http://127.0.0.1:8765",
            "Where the local AuthKit-protocol server listens (used without WORKOS_CLIENT_ID)."),
    Setting("WOS_COOKIE_PASSWORD", "(derived from SECRET_KEY)",
            "Key that seals the wos_session cookie (32+ characters)."),
    Setting("EVERSHELL_API_KEY_PEPPER", "(derived from SECRET_KEY)",
            "Server secret in the API key hash; changing it invalidates every key."),
    Setting("EVERSHELL_RATE_LIMIT_PER_MINUTE", "600", "Per-org request rate on /v1."),
    Setting("EVERSHELL_RATE_LIMIT_BURST", "120", "Per-org burst above the steady rate."),
    Setting("EVERSHELL_SECRETS_KEYS", "(derived from SECRET_KEY)",
            "Key ring encrypting secrets and credentials: comma list of <key id>:<base64 of 32 "
            "bytes>; the first encrypts, all decrypt (rotation)."),
    Setting("EVERSHELL_ALLOW_PRIVATE_NETWORKS", "false",
            "Let providers reach loopback/private/CGNAT addresses (local vLLM, Ollama); "
            "link-local and cloud metadata addresses stay refused."),
    Setting("EVERSHELL_PROVIDER_TIMEOUT_SECONDS", "300",
            "Longest silence on a model call (connecting: 10 s) before it counts as a timeout."),
    Setting("EVERSHELL_PROVIDER_RETRIES", "4",
            "Retries of a model call the provider says to retry (429, 5xx, 529, timeouts, "
            "connection errors); the SDKs' own retries are off."),
    Setting("EVERSHELL_PROVIDER_BACKOFF_SECONDS", "1",
            "First wait between retries when the provider names none; doubles each time "
            "(at most 60 s), with jitter."),
    Setting("EVERSHELL_PROVIDER_MAX_RETRY_WAIT_SECONDS", "120",
            "Longest retry-after honoured; a provider asking for longer fails the task now."),
    Setting("EVERSHELL_REQUEST_STATS", "false",
            "Add X-Evershell-Stats: sql=<statements>;redis=<round trips> to every response "
            "(for bench/request_path.py and diagnosis)."),
    Setting("EVERSHELL_BLOB_DIR", "<instance>/blobs",
            "Content-addressed blob store of content packs (local directory)."),
    Setting("EVERSHELL_PACK_MAX_BYTES", str(100 * 1024 * 1024),
            "Largest content-pack version (all files together)."),
    Setting("EVERSHELL_PACK_MAX_FILE_BYTES", str(25 * 1024 * 1024),
            "Largest single file in a content pack."),
    Setting("EVERSHELL_PACK_MAX_FILES", "10000", "Most files in one content-pack version."),
    Setting("EVERSHELL_UPLOAD_MAX_FILE_BYTES", str(25 * 1024 * 1024),
            "Largest single file a task is submitted with."),
    Setting("EVERSHELL_UPLOAD_MAX_BYTES", str(100 * 1024 * 1024),
            "Largest total of the files one task is submitted with."),
    Setting("EVERSHELL_DEMO", "true",
            "`evershell up` creates the offline demo org when no org exists yet."),
    Setting("EVERSHELL_ENVIRONMENTS", "",
            'Sandbox environment profiles, JSON: {"name": {"description": "…", "limits": '
            '{"memory_mb": 1024}}}; limits are ceilings over a role\'s caps. `default` '
            "always exists."),
    Setting("EVERSHELL_SANDBOX_ROOT", "<instance>/sandboxes",
            "Where live workspaces' /data directories are materialised on a worker."),
    Setting("EVERSHELL_SANDBOX_UIDS", "200000-265535",
            "Host uids sandboxed commands run as: one per live workspace, from this range."),
    Setting("EVERSHELL_REAPER_INTERVAL_SECONDS", "30",
            "How often a worker's reaper looks for workspaces whose job died."),
    Setting("EVERSHELL_SNAPSHOT_RETENTION_DAYS", "30",
            "How long `evershell gc` keeps the snapshots of deleted workspaces."),
)


def env(name: str) -> str | None:
    """The environment value of ``name``; empty strings count as unset."""
    value = os.environ.get(name, "").strip()
    return value or None


def _default_for(name: str) -> str:
    return next(s.default for s in SETTINGS if s.env == name)


def default_instance_dir() -> Path:
    """``instance/`` of the checkout holding this code, wherever the command runs from.

    A checkout (``pip install -e``) keeps its state next to the package; an installed
    package has no project directory of its own, so it uses the user's data directory.
    """
    project = Path(__file__).resolve().parent.parent
    if (project / "pyproject.toml").is_file():
        return project / "instance"
    data_home = env("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "evershell"


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
        or default_instance_dir()
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
        "PUBLIC_URL": env("EVERSHELL_PUBLIC_URL")
        or f"http://127.0.0.1:{env('PORT') or _default_for('PORT')}",
        "WORKOS_CLIENT_ID": env("WORKOS_CLIENT_ID"),
        "WORKOS_API_KEY": env("WORKOS_API_KEY"),
        "WORKOS_API_BASE": (env("WORKOS_API_BASE") or _default_for("WORKOS_API_BASE")).rstrip("/"),
        "AUTHKIT_ISSUERS": [i.strip() for i in (env("AUTHKIT_ISSUERS") or "").split(",")
                            if i.strip()],
        "LOCALAUTH_URL": (env("EVERSHELL_LOCALAUTH_URL")
                          or _default_for("EVERSHELL_LOCALAUTH_URL")).rstrip("/"),
        "WOS_COOKIE_PASSWORD": env("WOS_COOKIE_PASSWORD"),
        "API_KEY_PEPPER": env("EVERSHELL_API_KEY_PEPPER"),
        "RATE_LIMIT_PER_MINUTE": int(env("EVERSHELL_RATE_LIMIT_PER_MINUTE")
                                     or _default_for("EVERSHELL_RATE_LIMIT_PER_MINUTE")),
        "RATE_LIMIT_BURST": int(env("EVERSHELL_RATE_LIMIT_BURST")
                                or _default_for("EVERSHELL_RATE_LIMIT_BURST")),
        "QUEUES": (env("EVERSHELL_QUEUES") or _default_for("EVERSHELL_QUEUES")).split(","),
        "ENVIRONMENTS": env("EVERSHELL_ENVIRONMENTS"),
        "DEMO": (env("EVERSHELL_DEMO") or "true").lower() not in ("0", "false", "no", "off"),
        "UPLOAD_MAX_FILE_BYTES": int(env("EVERSHELL_UPLOAD_MAX_FILE_BYTES")
                                     or _default_for("EVERSHELL_UPLOAD_MAX_FILE_BYTES")),
        "UPLOAD_MAX_BYTES": int(env("EVERSHELL_UPLOAD_MAX_BYTES")
                                or _default_for("EVERSHELL_UPLOAD_MAX_BYTES")),
        "REQUEST_STATS": (env("EVERSHELL_REQUEST_STATS") or "false").lower()
        in ("1", "true", "yes", "on"),
        "SANDBOX_ROOT": env("EVERSHELL_SANDBOX_ROOT") or str(instance_dir / "sandboxes"),
        "SANDBOX_UIDS": env("EVERSHELL_SANDBOX_UIDS") or _default_for("EVERSHELL_SANDBOX_UIDS"),
        "REAPER_INTERVAL_SECONDS": float(env("EVERSHELL_REAPER_INTERVAL_SECONDS")
                                         or _default_for("EVERSHELL_REAPER_INTERVAL_SECONDS")),
        "SNAPSHOT_RETENTION_DAYS": int(env("EVERSHELL_SNAPSHOT_RETENTION_DAYS")
                                       or _default_for("EVERSHELL_SNAPSHOT_RETENTION_DAYS")),
        # flask-smorest: OpenAPI 3.1 at /v1/openapi.json, Swagger UI at /v1/docs from static/.
        "API_TITLE": "Evershell",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": "/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": "/static/vendor/swagger-ui/",
        # No ping per checkout (a round trip on every request): connections are
        # recycled after five minutes, and a read that meets a dropped one is retried
        # on a fresh one (access.guard).
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": False, "pool_recycle": 300},
        "JSON_SORT_KEYS": False,
        # Flask's own session cookie (sign-in state, flashes): not readable by scripts,
        # and not sent on cross-site POSTs.
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_HTTPONLY": True,
    }
    config.update(overrides)
    if not config["SECRET_KEY"]:
        config["SECRET_KEY"] = _persistent_secret(Path(config["INSTANCE_DIR"]) / "secret_key")
    return config
