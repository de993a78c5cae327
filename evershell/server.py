"""The gunicorn worker Evershell runs: gevent (for SSE), with gunicorn's own errors in
the product's envelope.

gunicorn answers some requests before the application sees them — a request line over
``limit_request_line`` (414), headers over ``limit_request_fields`` or
``limit_request_field_size`` (431), a malformed request (400) — with an HTML page of its
own. API clients parse JSON errors, so this worker answers those in the documented
envelope too, with a request id and the limit that was exceeded.

Use: ``gunicorn -k evershell.server.Worker app:app`` (the Procfile and ``evershell up``).
"""

from __future__ import annotations

import gc
import json
import re
import uuid

from gunicorn import util
from gunicorn.workers.ggevent import GeventWorker

# Statuses gunicorn answers by itself, as codes of the closed enum.
_CODES = {400: "validation_error", 403: "permission_denied", 414: "uri_too_long",
          417: "validation_error", 431: "headers_too_large", 500: "internal_error",
          501: "unsupported_media_type"}


def _messages(cfg) -> dict[int, tuple[str, dict]]:
    return {
        414: (f"The request line (method, path and query string) is longer than "
              f"{cfg.limit_request_line} bytes.",
              {"limit_bytes": cfg.limit_request_line}),
        431: (f"The request headers exceed this server's limits: at most "
              f"{cfg.limit_request_fields} header fields of at most "
              f"{cfg.limit_request_field_size} bytes each.",
              {"max_fields": cfg.limit_request_fields,
               "max_field_bytes": cfg.limit_request_field_size}),
    }


def envelope_writer(cfg):
    """A replacement for ``gunicorn.util.write_error`` that writes the envelope."""
    messages = _messages(cfg)

    def write_error(sock, status_int, reason, mesg):
        request_id = uuid.uuid4().hex
        message, details = messages.get(status_int, (mesg or reason, None))
        error = {"code": _CODES.get(status_int, "validation_error"), "message": message,
                 "request_id": request_id}
        if details:
            error["details"] = details
        body = json.dumps({"error": error}).encode()
        head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
                f"Content-Type: application/json\r\nX-Request-Id: {request_id}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
        util.write_nonblock(sock, head + body)

    return write_error


# ``?api_key=`` is accepted on event-stream routes (EventSource cannot set headers); the
# access log prints request lines, so the value is masked in every atom of a log line.
_CREDENTIAL_IN_QUERY = re.compile(r"(?i)((?:^|[?&;])(?:api_key|access_token)=)[^&;\s\"]*")
_REDACTED = "[redacted]"


def redact(text: str) -> str:
    return _CREDENTIAL_IN_QUERY.sub(lambda m: m.group(1) + _REDACTED, text)


def redacting(atoms):
    """Wrap a gunicorn logger's ``atoms`` so no access-log field carries a credential."""

    def safe_atoms(resp, req, environ, request_time):
        values = atoms(resp, req, environ, request_time)
        for key, value in values.items():
            if isinstance(value, str):
                values[key] = redact(value)
        if "{authorization}i" in values:
            values["{authorization}i"] = _REDACTED
        return values

    return safe_atoms


class Worker(GeventWorker):
    """gunicorn's gevent worker whose pre-application errors are JSON envelopes and
    whose access log never carries a credential."""

    def init_process(self):
        # Process-wide, and only in this worker process: gunicorn's base worker calls
        # ``util.write_error`` for every error it answers itself.
        util.write_error = envelope_writer(self.cfg)
        self.log.atoms = redacting(self.log.atoms)
        super().init_process()

    def load_wsgi(self):
        super().load_wsgi()
        # The app's import-time objects live as long as the process: moving them out of
        # the collector's reach keeps full collections short (they stalled SSE delivery
        # by 160-190 ms on a 100 MiB heap; bench/sse.py).
        gc.collect()
        gc.freeze()
