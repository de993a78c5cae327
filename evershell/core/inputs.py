"""What every request's input must be before any schema or service sees it.

One place for the rules that no field should have to repeat: JSON that is valid but
hostile (numbers of thousands of digits, nesting thousands of levels deep, non-finite
numbers), text no column can store (NUL, lone UTF-16 surrogates), integers out of the
range every column holds, and bodies in a media type the route does not take.
Failures are 400 ``validation_error`` (415 for media types) in the usual envelope.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

from flask import Flask, request

from evershell.core.errors import ErrorCode, EvershellError, validation_error

# Every integer a client sends fits a 32-bit signed column (versions, limits, counts).
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
MAX_JSON_DEPTH = 64
_MAX_NUMBER_CHARS = 40  # longer than any finite double or bounded integer written plainly
JSON_TYPES = ("application/json",)
FORM_TYPES = ("application/x-www-form-urlencoded",)


class HostileInput(ValueError):
    """Input refused before any schema sees it; ``path`` names where."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


def _parse_int(text: str) -> int:
    if len(text) > _MAX_NUMBER_CHARS:
        raise HostileInput("", f"A number of {len(text)} digits is too long.")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > _MAX_NUMBER_CHARS:
        raise HostileInput("", f"A number of {len(text)} characters is too long.")
    value = float(text)
    if not math.isfinite(value):
        raise HostileInput("", "Numbers must be finite.")
    return value


def _refuse_constant(name: str) -> Any:
    raise HostileInput("", f"{name} is not a JSON number.")


def load_json(raw: bytes | str) -> Any:
    """Parse a request body as strict JSON; raise ``HostileInput`` for what no route
    takes. An empty body raises ``json.JSONDecodeError`` with an empty ``doc``."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float,
                           parse_constant=_refuse_constant)
    except RecursionError:
        raise HostileInput("", f"JSON nested deeper than {MAX_JSON_DEPTH} levels.") from None
    check_value(value)
    return value


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None."""
    if "\x00" in text:
        return "Text may not contain NUL characters."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "Text may not contain lone UTF-16 surrogates."
    return None


def check_value(value: Any) -> None:
    """Walk a parsed JSON value (iteratively: depth is what is being checked)."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise HostileInput(path, f"JSON nested deeper than {MAX_JSON_DEPTH} levels.")
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                raise HostileInput(path, problem)
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = text_problem(key)
                if problem:
                    raise HostileInput(path, f"A key: {problem}")
                stack.append((child, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{index}]", depth + 1)
                         for index, child in enumerate(item))


def check_pairs(pairs: Iterable[tuple[str, str]]) -> None:
    """Query-string or form fields: every name and value storable."""
    for name, value in pairs:
        for text in (name, value):
            if isinstance(text, str):
                problem = text_problem(text)
                if problem:
                    raise HostileInput(name if text_problem(name) is None else "", problem)


def check_int_bounds(value: Any, path: str = "") -> None:
    """Integers a schema loaded fit the columns that store them."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise HostileInput(path, f"Must be between {INT_MIN} and {INT_MAX}.")
    elif isinstance(value, dict):
        for key, child in value.items():
            check_int_bounds(child, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, child in enumerate(value):
            check_int_bounds(child, f"{path}[{index}]")


def version_number(text: Any) -> int | None:
    """A positive version number written in ASCII digits within the column's range,
    else None (``¹`` and ``١`` are digits to ``str.isdigit``, not to us)."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text if 0 < text <= INT_MAX else None
    text = str(text)
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    value = int(text)
    return value if 0 < value <= INT_MAX else None


def nested_fields(path: str, reason: str) -> dict[str, Any]:
    """``material.password`` → ``{"material": {"password": [reason]}}``, the shape
    marshmallow gives nested fields (list items keyed by their index)."""
    parts = [part for part in re.split(r"\.|\[(\d+)\]", path) if part]
    result: Any = [reason]
    for part in reversed(parts):
        result = {part: result}
    return result


def refusal(exc: HostileInput, location: str = "body") -> EvershellError:
    return validation_error(nested_fields(exc.path or location, exc.reason), exc.reason)


def has_body() -> bool:
    if request.content_length:
        return True
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def ensure_media_type(accepted: Iterable[str]) -> None:
    """415 for a non-empty body of a type the route does not take."""
    accepted = tuple(accepted)
    if not has_body():
        return
    mimetype = request.mimetype
    if mimetype in accepted:
        return
    if "application/json" in accepted and mimetype.startswith("application/") \
            and mimetype.endswith("+json"):
        return
    shown = mimetype or "no Content-Type"
    raise EvershellError(
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        f"This route takes {' or '.join(accepted)} bodies, not {shown}.", 415,
        {"accepted": list(accepted), "received": mimetype or None})


def ensure_body(view) -> None:
    """What a route with a body needs: a media type it takes (415), and a body at all
    when its OpenAPI document says the body is required (400)."""
    ensure_media_type(accepted_media_types(view))
    if not has_body() and body_required(view):
        raise validation_error({"body": ["A request body is required."]},
                               "This route needs a request body.")


def body_required(view) -> bool:
    parameters = getattr(view, "_apidoc", {}).get("arguments", {}).get("parameters", [])
    return any(p.get("required", True) and (p.get("in") or p.get("location")) in
               ("json", "body", "form", "files") for p in parameters)


def accepts(*media_types: str):
    """Declare the body types of a view that parses its body itself (JSON or a
    multipart upload, say)."""
    def decorator(view):
        view.evershell_media_types = media_types
        return view
    return decorator


def accepted_media_types(view) -> tuple[str, ...]:
    """The body types a flask-smorest view declares (JSON when it declares none)."""
    declared = getattr(view, "evershell_media_types", None)
    if declared:
        return tuple(declared)
    parameters = getattr(view, "_apidoc", {}).get("arguments", {}).get("parameters", [])
    types = []
    for parameter in parameters:
        location = parameter.get("in") or parameter.get("location")
        if location in ("json", "body"):
            types.append(parameter.get("content_type") or "application/json")
        elif location in ("form", "files"):
            types.append(parameter.get("content_type") or "application/x-www-form-urlencoded")
    return tuple(dict.fromkeys(types)) or JSON_TYPES


def init_app(app: Flask) -> None:
    """Query strings and urlencoded forms everywhere are checked before any view runs
    (multipart bodies are left to the routes that stream them)."""

    @app.before_request
    def _check_request_text():
        try:
            check_pairs(request.args.items(multi=True))
            if request.mimetype in FORM_TYPES:
                check_pairs(request.form.items(multi=True))
        except HostileInput as exc:
            raise refusal(exc, "query") from None
