"""The local server's Flask app factory, its JSON endpoints and the process entry point."""

from __future__ import annotations

import ipaddress
import logging
import sys

from flask import Flask, jsonify
from werkzeug.serving import run_simple
from werkzeug.wrappers import Response

from evershell.localauth.authenticate import bp as authenticate_bp
from evershell.localauth.authorize import bp as authorize_bp
from evershell.localauth.context import EXTENSION, LocalAuthState, current
from evershell.localauth.keys import load_or_create_key
from evershell.localauth.settings import LocalAuthSettings, SettingsError
from evershell.localauth.store import Store

log = logging.getLogger(__name__)


def create_localauth_app(settings: LocalAuthSettings | None = None) -> Flask:
    """Build the server; ``settings`` defaults to ``LocalAuthSettings.from_env()``."""
    settings = settings or LocalAuthSettings.from_env()
    app = Flask(__name__)
    app.json.sort_keys = False
    app.extensions[EXTENSION] = LocalAuthState(
        settings=settings,
        key=load_or_create_key(settings.key_file),
        store=Store(code_ttl=settings.code_ttl),
    )
    app.register_blueprint(authorize_bp)
    app.register_blueprint(authenticate_bp)
    app.add_url_rule("/sso/jwks/<client_id>", view_func=jwks)
    app.add_url_rule("/health", view_func=health)
    return app


def jwks(client_id: str) -> Response:
    """The public signing key of ``client_id`` as a JWK set."""
    state = current()
    if client_id != state.settings.client_id:
        response = jsonify({"code": "entity_not_found",
                            "message": f"No client with id {client_id!r}."})
        response.status_code = 404
        return response
    return jsonify({"keys": [state.key.public_jwk()]})


def health() -> Response:
    """Liveness probe."""
    return jsonify({"ok": True})


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main() -> None:
    """Run the server from ``LOCALAUTH_*`` settings with werkzeug's threaded server."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                                                   "%(message)s")
    try:
        settings = LocalAuthSettings.from_env()
    except SettingsError as exc:
        print(f"localauth: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if not _is_loopback(settings.host):
        # Anyone who can reach it can sign in as anyone: say so loudly.
        log.warning("localauth: listening on %s, not loopback; this development identity "
                    "provider signs in any email without a password", settings.host)
    app = create_localauth_app(settings)
    log.info("localauth: http://%s:%d issuer=%s client_id=%s key=%s", settings.host,
             settings.port, settings.issuer, settings.client_id, settings.key_file)
    run_simple(settings.host, settings.port, app, threaded=True, use_reloader=False)
