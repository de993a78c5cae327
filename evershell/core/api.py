"""flask-smorest wiring: our Api and Blueprint, 400 validation errors, the error schema.

flask-smorest registers an app-wide HTTPException handler that would turn console
errors into JSON (its issues #174, #640); ``EvershellApi`` leaves error handling to
``evershell.core.errors`` so console pages stay HTML.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, NoReturn

import marshmallow as ma
from apispec import BasePlugin
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from marshmallow.utils import missing
from webargs.core import is_json
from webargs.flaskparser import FlaskParser
from werkzeug.routing import BaseConverter

from evershell.core import inputs
from evershell.core.errors import ErrorCode, validation_error


class TimeOrEmpty(ma.fields.AwareDateTime):
    """An ISO 8601 date-time with a timezone, or an empty value meaning "not given" (a
    form submits every field): documented as a string, not as a date-time, since an
    empty value is accepted."""


class ErrorBodySchema(ma.Schema):
    code = ma.fields.Enum(ErrorCode, by_value=True, required=True,
                          metadata={"description": "Closed-enum error slug"})
    message = ma.fields.String(required=True, metadata={"description": "Human-readable summary"})
    request_id = ma.fields.String(
        required=True, metadata={"description": "Server-generated request id for correlating logs"})
    details = ma.fields.Dict(metadata={
        "description": "Optional structured context. Validation errors land at "
                       "details.fields as a per-field map."})


class ErrorSchema(ma.Schema):
    """The error envelope every ``/v1`` error uses."""

    error = ma.fields.Nested(ErrorBodySchema, required=True)


@functools.cache
def _shared_instance(schema: type[ma.Schema]) -> ma.Schema:
    return schema()


class EvershellParser(FlaskParser):
    """webargs parser whose failures are our 400 ``validation_error``."""

    DEFAULT_VALIDATION_STATUS = 400

    def handle_error(self, error, req, schema, *, error_status_code, error_headers) -> NoReturn:
        fields: Any = error.normalized_messages()
        # webargs nests messages under the location ("json", "query", ...); callers
        # care about their field names, so a single location is flattened away.
        if isinstance(fields, dict) and len(fields) == 1:
            (only,) = fields.values()
            if isinstance(only, dict):
                fields = only
        raise validation_error(fields)

    def _get_schema(self, argmap, req):
        """One instance per schema class, made once (webargs makes one per request
        otherwise: a tenth of a millisecond of deep copies of its fields each time).
        Loading keeps no state on a marshmallow 4 schema, so the instance is shared."""
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            return _shared_instance(argmap)
        return super()._get_schema(argmap, req)

    def _raw_load_json(self, req):
        """Strict JSON, checked once for every schema (``evershell.core.inputs``)."""
        if not is_json(req.mimetype):
            return missing
        try:
            return inputs.load_json(req.get_data(cache=True))
        except inputs.HostileInput as exc:
            raise inputs.refusal(exc) from None

    def pre_load(self, location_data, *, schema, req, location):
        # Query strings and urlencoded forms were checked before the view
        # (``inputs.init_app``); multipart fields are checked here, where they are parsed.
        if location == "form":
            try:
                inputs.check_pairs(req.form.items(multi=True))
            except inputs.HostileInput as exc:
                raise inputs.refusal(exc, location) from None
        return location_data

    def _process_location_data(self, location_data, schema, req, location, unknown,
                               validators):
        data = super()._process_location_data(location_data, schema, req, location,
                                              unknown, validators)
        try:
            inputs.check_int_bounds(data)
        except inputs.HostileInput as exc:
            raise ma.ValidationError(inputs.nested_fields(exc.path, exc.reason)) from None
        return data

    def _handle_invalid_json_error(self, error, req, *args, **kwargs) -> NoReturn:
        raise validation_error({"body": ["The request body is not valid JSON."]},
                               "The request body is not valid JSON.")


class Blueprint(SmorestBlueprint):
    ARGUMENTS_PARSER = EvershellParser()

    def errors(self, *codes: ErrorCode) -> Callable:
        """Document the error codes this view's service raises; the guard's own (401,
        403, 423, 429, 400 on bodies and queries, …) are added by ``DocumentedErrors``."""
        return self.doc(**{ROUTE_ERRORS: [ErrorCode(c).value for c in codes]})


class EvershellApi(Api):
    ERROR_SCHEMA = ErrorSchema
    DEFAULT_ERROR_RESPONSE_NAME = None  # every error status is listed per route

    def __init__(self, contract: Callable[[Any, str, dict], RouteContract] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._contract = contract

    def init_app(self, app, *, spec_kwargs=None) -> None:
        spec_kwargs = dict(spec_kwargs or {})
        if self._contract is not None:
            spec_kwargs["extra_plugins"] = [*spec_kwargs.get("extra_plugins", ()),
                                            DocumentedErrors(self._contract)]
        super().init_app(app, spec_kwargs=spec_kwargs)
        app.url_map.converters.setdefault("id", IdConverter)
        self.register_converter(IdConverter, _id_parameter)
        self.register_field(TimeOrEmpty, "string", None)
        for name, scheme in SECURITY_SCHEMES.items():
            self.spec.components.security_scheme(name, scheme)

    def _register_error_handlers(self) -> None:
        """Errors are mapped app-wide by ``evershell.core.errors``."""


# --- The OpenAPI document: what the server does around each route ----------------------
#
# Kept apart from the parser above. Each view lists the error codes its service raises
# with ``@blp.errors(...)``; ``DocumentedErrors`` adds what the request guard and the
# request pipeline add (authentication, scopes, rate limit, billing, validation, body
# limits), groups the codes by status and documents each status with the envelope whose
# ``code`` is the enum of exactly those codes. No ``default`` response: a status that is
# not listed is a bug the contract test catches.

ROUTE_ERRORS = "x-evershell-errors"  # carries a view's own codes to the plugin

# The status each code is answered with (one status per code).
ERROR_STATUS: dict[ErrorCode, int] = {
    ErrorCode.VALIDATION_ERROR: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.WORKSPACE_NOT_VISIBLE: 403,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.INVALID_CAPABILITIES: 422,
    ErrorCode.BILLING_INACTIVE: 423,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
}


def error_status(code: ErrorCode) -> int:
    """The HTTP status ``code`` is answered with: ``*_not_found`` 404, conflicts 409."""
    if code in ERROR_STATUS:
        return ERROR_STATUS[code]
    return 404 if code.value.endswith("not_found") else 409


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "A session JWT (`eyJ…`) or an API key (`sk_…`)."},
    "apiKeyQuery": {"type": "apiKey", "in": "query", "name": "api_key",
                    "description": "An API key (`sk_…`), on event-stream routes only: "
                                   "EventSource cannot send headers."},
}


@dataclass(frozen=True)
class RouteContract:
    """What the server adds to a route's own errors, and how it authenticates."""

    codes: frozenset[ErrorCode]
    security: list[dict[str, list]]


def error_response_schema(codes: Iterable[ErrorCode]) -> dict[str, Any]:
    """The envelope with ``error.code`` narrowed to ``codes``."""
    return {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "allOf": [{"$ref": "#/components/schemas/ErrorBody"}],
            "properties": {"code": {"enum": sorted(c.value for c in codes)}},
        }},
    }


class IdConverter(BaseConverter):
    """``<id:key_id>``: an id, ``<prefix>_<body>`` (``key_01J…``, see
    ``evershell.core.ids``). No fixed segment beside it has an underscore
    (``/api-keys/templates``), so it never matches one, and that path answers and
    advertises (``Allow``) only its own methods. Lenient past the prefix on purpose: a
    mistyped id of the right shape is still the resource's 404 (``key_not_found``)."""

    regex = r"[a-z]+_[^/]+"


def _id_parameter(_converter: IdConverter) -> dict[str, Any]:
    return {"type": "string", "pattern": f"^{IdConverter.regex}$"}


class DocumentedErrors(BasePlugin):
    """apispec plugin: completes every operation's error responses and security from
    ``contract(rule, method, operation)`` and the view's ``@blp.errors`` codes."""

    def __init__(self, contract: Callable[[Any, str, dict], RouteContract]) -> None:
        super().__init__()
        self.contract = contract

    def schema_helper(self, name, definition, **kwargs) -> dict | None:
        """A schema's ``Meta.openapi`` (e.g. a ``oneOf`` of required fields) completes
        what apispec derives from its fields."""
        schema = kwargs.get("schema")
        schema_class = schema if isinstance(schema, type) else type(schema)
        return getattr(getattr(schema_class, "Meta", None), "openapi", None)

    def operation_helper(self, path=None, operations=None, **kwargs) -> None:
        rule = kwargs.get("rule")
        for method, operation in (operations or {}).items():
            if method not in {"get", "put", "post", "patch", "delete"}:
                continue
            route = self.contract(rule, method, operation)
            operation["security"] = route.security
            own = {ErrorCode(c) for c in operation.pop(ROUTE_ERRORS, [])}
            by_status: dict[int, set[ErrorCode]] = {}
            for code in own | route.codes:
                by_status.setdefault(error_status(code), set()).add(code)
            responses = operation.setdefault("responses", {})
            responses.pop("default", None)
            for status, codes in sorted(by_status.items()):
                listed = ", ".join(f"`{c.value}`" for c in sorted(codes))
                described = responses.get(str(status), {}).get("description")
                responses[str(status)] = {
                    "description": f"{described} (code: {listed})" if described
                    and not described.startswith(("Error", HTTPStatus(status).phrase))
                    else f"{HTTPStatus(status).phrase}: {listed}",
                    "content": {"application/json": {"schema": error_response_schema(codes)}},
                }
            operation["responses"] = dict(sorted(responses.items(), key=lambda kv: str(kv[0])))
            operation["x-error-codes"] = {
                str(status): sorted(c.value for c in codes)
                for status, codes in sorted(by_status.items())}
