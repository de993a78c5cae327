"""One error type for the whole product, and the one place it becomes a response.

Services raise ``EvershellError(code, message, status, details)``. Under ``/v1`` every
error — ours, werkzeug's HTTP errors (404, 405, 413, …) and unhandled exceptions —
becomes the documented envelope ``{"error": {"code", "message", "request_id",
"details"?}}``. Console routes render an HTML page instead (or a fragment for htmx).
"""

from __future__ import annotations

import enum
import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, g, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger("evershell.errors")

API_PREFIX = "/v1"


class ErrorCode(enum.StrEnum):
    """The closed enum of error codes (documented in the OpenAPI spec)."""

    VALIDATION_ERROR = "validation_error"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    URI_TOO_LONG = "uri_too_long"
    HEADERS_TOO_LARGE = "headers_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    CONFLICT = "conflict"
    BILLING_INACTIVE = "billing_inactive"
    RATE_LIMITED = "rate_limited"
    INTERNAL_ERROR = "internal_error"
    SERVICE_UNAVAILABLE = "service_unavailable"
    ORG_NOT_FOUND = "org_not_found"
    USER_NOT_FOUND = "user_not_found"
    MEMBERSHIP_NOT_FOUND = "membership_not_found"
    SLUG_TAKEN = "slug_taken"
    ALREADY_MEMBER = "already_member"
    LAST_OWNER = "last_owner"
    API_KEY_NOT_FOUND = "api_key_not_found"
    INVITATION_NOT_FOUND = "invitation_not_found"
    WORKSPACE_NOT_VISIBLE = "workspace_not_visible"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    IDEMPOTENCY_IN_PROGRESS = "idempotency_in_progress"
    NAME_TAKEN = "name_taken"
    SECRET_NOT_FOUND = "secret_not_found"
    SECRET_IN_USE = "secret_in_use"
    CREDENTIAL_NOT_FOUND = "credential_not_found"
    PROVIDER_NOT_FOUND = "provider_not_found"
    PROVIDER_ARCHIVED = "provider_archived"
    PROVIDER_IN_USE = "provider_in_use"
    ROLE_NOT_FOUND = "role_not_found"
    ROLE_ARCHIVED = "role_archived"
    VERSION_NOT_FOUND = "version_not_found"
    INVALID_CAPABILITIES = "invalid_capabilities"
    PACK_NOT_FOUND = "pack_not_found"
    PACK_ARCHIVED = "pack_archived"
    PACK_IN_USE = "pack_in_use"
    FILE_NOT_FOUND = "file_not_found"
    WORKSPACE_NOT_FOUND = "workspace_not_found"
    TASK_NOT_FOUND = "task_not_found"
    TASK_ALREADY_RUNNING = "task_already_running"
    WORKSPACE_RUNNING = "workspace_running"
    NETWORK_POLICY_UNSUPPORTED = "network_policy_unsupported"
    WORKSPACE_STATE_CONFLICT = "workspace_state_conflict"
    NO_SNAPSHOT = "no_snapshot"
    SNAPSHOT_NOT_FOUND = "snapshot_not_found"
    ROLE_IN_USE = "role_in_use"


# HTTP statuses that map to a generic code when werkzeug raises them.
_HTTP_CODES = {
    400: ErrorCode.VALIDATION_ERROR,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.PERMISSION_DENIED,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    414: ErrorCode.URI_TOO_LONG,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    423: ErrorCode.BILLING_INACTIVE,
    429: ErrorCode.RATE_LIMITED,
    431: ErrorCode.HEADERS_TOO_LARGE,
    503: ErrorCode.SERVICE_UNAVAILABLE,
}
_HTTP_MESSAGES = {
    404: "No such route.",
    405: "This route does not accept that method.",
    413: "The request body is larger than this server accepts.",
}


class EvershellError(Exception):
    """An error a caller can act on: a closed-enum ``code``, a message and an HTTP status."""

    def __init__(
        self,
        code: ErrorCode | str,
        message: str,
        status: int = 400,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.status = status
        self.details = details
        self.headers = headers or {}


def validation_error(fields: dict[str, Any], message: str = "The request is not valid.") \
        -> EvershellError:
    """A 400 ``validation_error`` carrying a per-field map at ``details.fields``."""
    return EvershellError(ErrorCode.VALIDATION_ERROR, message, 400, {"fields": fields})


def is_api_request() -> bool:
    path = request.path
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def envelope(error: EvershellError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": error.code.value,
        "message": error.message,
        "request_id": g.get("request_id", ""),
    }
    if error.details is not None:
        body["details"] = error.details
    return {"error": body}


def _from_http_exception(exc: HTTPException) -> EvershellError:
    status = exc.code or 500
    code = _HTTP_CODES.get(status, ErrorCode.INTERNAL_ERROR if status >= 500
                           else ErrorCode.VALIDATION_ERROR)
    message = _HTTP_MESSAGES.get(status) or exc.description or HTTPStatus(status).phrase
    headers = {k: v for k, v in exc.get_headers() if k.lower() in ("allow", "retry-after")}
    return EvershellError(code, message, status, headers=headers)


# Logged, not audited (SPEC §5): refusals that carry no authenticated mutation.
_LOGGED_STATUSES = {401, 423, 429}


def _render(error: EvershellError) -> Response:
    if error.status in _LOGGED_STATUSES:
        log.info("%s %s refused: %s %s", request.method, request.path, error.status,
                 error.code.value)
    if is_api_request():
        response = jsonify(envelope(error))
    else:
        response = _render_page(error)
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def _render_page(error: EvershellError) -> Response:
    template = {404: "errors/404.html", 500: "errors/500.html"}.get(
        error.status, "errors/error.html")
    request_id = g.get("request_id", "")
    try:
        return make_response(render_template(
            template, status=error.status, title=HTTPStatus(error.status).phrase,
            message=error.message, request_id=request_id))
    except Exception:
        # An error page must never fail: fall back to plain text, and say why in the log.
        log.exception("error page %s failed to render", template)
        return make_response(
            f"{error.status} {HTTPStatus(error.status).phrase}\n{error.message}\n"
            f"Reference: {request_id}\n", error.status, {"Content-Type": "text/plain"})


def register_error_handlers(app: Flask) -> None:
    """Map every exception to the envelope (API) or an HTML page (console)."""

    @app.errorhandler(EvershellError)
    def _evershell_error(exc: EvershellError):
        return _render(exc)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return _render(_from_http_exception(exc))

    @app.errorhandler(Exception)
    def _unhandled(exc: Exception):
        if isinstance(exc, HTTPException):  # pragma: no cover - handled above
            return _http_error(exc)
        log.exception("unhandled exception on %s %s", request.method, request.path)
        return _render(EvershellError(
            ErrorCode.INTERNAL_ERROR,
            "Something went wrong on our side; the request id identifies it in our logs.",
            500))
