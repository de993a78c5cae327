"""Request ids: echoed when the caller sends a sane one, generated otherwise,
carried on every response and every log line."""

from __future__ import annotations

import logging
import re
import sys
import uuid

from flask import Flask, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-Id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def current_request_id() -> str:
    return g.get("request_id", "") if has_request_context() else ""


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` so every formatter can print it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        return True


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (gunicorn and test runners swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def configure_logging(level: str) -> None:
    """One stream handler on the ``evershell`` logger tree, request id on every line."""
    logger = logging.getLogger("evershell")
    logger.setLevel(level.upper())
    if any(getattr(h, "_evershell", False) for h in logger.handlers):
        return
    handler = _StderrHandler()
    handler._evershell = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [req %(request_id)s] %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False


def init_request_ids(app: Flask) -> None:
    @app.before_request
    def _assign_request_id() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def _echo_request_id(response):
        # Errors raised before before_request (e.g. routing) still get an id here.
        if "request_id" not in g:
            g.request_id = uuid.uuid4().hex
        response.headers[REQUEST_ID_HEADER] = g.request_id
        return response
