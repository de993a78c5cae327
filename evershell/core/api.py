"""flask-smorest wiring: our Api and Blueprint, 400 validation errors, the error schema.

flask-smorest registers an app-wide HTTPException handler that would turn console
errors into JSON (its issues #174, #640); ``EvershellApi`` leaves error handling to
``evershell.core.errors`` so console pages stay HTML.
"""

from __future__ import annotations

from typing import Any, NoReturn

import marshmallow as ma
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from webargs.flaskparser import FlaskParser

from evershell.core.errors import ErrorCode, validation_error


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

    def _handle_invalid_json_error(self, error, req, *args, **kwargs) -> NoReturn:
        raise validation_error({"body": ["The request body is not valid JSON."]},
                               "The request body is not valid JSON.")


class Blueprint(SmorestBlueprint):
    ARGUMENTS_PARSER = EvershellParser()


class EvershellApi(Api):
    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self) -> None:
        """Errors are mapped app-wide by ``evershell.core.errors``."""
