"""The field rules of a role version, applied by ``services`` to API bodies and console
forms alike. Messages name the rule, in marshmallow's per-field shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evershell.roles.models import THINKING_EFFORTS

MAX_NAME = 200
MAX_DESCRIPTION = 2000
MAX_SYSTEM_PROMPT = 100_000
MAX_PACKS = 20
DEFAULT_THINKING_EFFORT = "medium"
# Task-level limits a role gives its tasks unless the task says otherwise (seed 001).
MAX_CONTINUATIONS = (1, 1000, 20)  # minimum, maximum, default
MAX_CONTEXT_TOKENS = (1000, 2_000_000, 100_000)

# Every field a version carries, in the order people read them.
FIELDS = ("name", "description", "provider_id", "model", "system_prompt", "capabilities",
          "pack_ids", "thinking_effort", "max_continuations", "max_context_tokens")
DEFAULTS: dict[str, Any] = {
    "description": "", "system_prompt": "", "capabilities": "", "pack_ids": [],
    "thinking_effort": DEFAULT_THINKING_EFFORT,
    "max_continuations": MAX_CONTINUATIONS[2], "max_context_tokens": MAX_CONTEXT_TOKENS[2],
}
REQUIRED = ("name", "provider_id", "model")


class Invalid(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.messages = [message]


def _text(value: Any, limit: int, required: bool = False, strip: bool = False) -> str:
    if not isinstance(value, str):
        raise Invalid("Must be a string.")
    # Browsers send textarea lines ending in CRLF; store one spelling so an unchanged
    # form does not look like a change.
    value = value.replace("\r\n", "\n")
    if strip:
        value = value.strip()
    if required and not value:
        raise Invalid("Required.")
    if len(value) > limit:
        raise Invalid(f"At most {limit} characters.")
    return value


def _integer(value: Any, bounds: tuple[int, int, int]) -> int:
    minimum, maximum, _default = bounds
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid("Must be a whole number.")
    if not minimum <= value <= maximum:
        raise Invalid(f"Must be between {minimum} and {maximum}.")
    return value


def _pack_ids(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid("Must be a list of pack ids.")
    if len(value) > MAX_PACKS:
        raise Invalid(f"At most {MAX_PACKS} packs.")
    if len(set(value)) != len(value):
        raise Invalid("A pack is listed twice.")
    return list(value)


_CHECKS = {
    "name": lambda v: _text(v, MAX_NAME, required=True, strip=True),
    "description": lambda v: _text(v, MAX_DESCRIPTION, strip=True),
    "provider_id": lambda v: _text(v, 40, required=True, strip=True),
    "model": lambda v: _text(v, 200, required=True, strip=True),
    "system_prompt": lambda v: _text(v, MAX_SYSTEM_PROMPT),
    "capabilities": lambda v: _text(v, 10 * 64 * 1024),  # the compiler says 64 KiB
    "pack_ids": _pack_ids,
    "thinking_effort": lambda v: _choice(v, THINKING_EFFORTS),
    "max_continuations": lambda v: _integer(v, MAX_CONTINUATIONS),
    "max_context_tokens": lambda v: _integer(v, MAX_CONTEXT_TOKENS),
}


def _choice(value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise Invalid(f"Must be one of: {', '.join(choices)}.")
    return value


def checked(given: Mapping[str, Any], required: bool) -> tuple[dict[str, Any], dict]:
    """(the given fields after their rules, per-field errors). ``required``: a create,
    where the required fields must be present (the others take their defaults)."""
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for field in given:
        if field not in _CHECKS:
            errors[field] = ["Unknown field."]
    for field, check in _CHECKS.items():
        if field not in given or given[field] is None:
            if required and field in REQUIRED:
                errors[field] = ["Required."]
            elif required:
                values[field] = DEFAULTS[field]
            continue
        try:
            values[field] = check(given[field])
        except Invalid as exc:
            errors[field] = exc.messages
    return values, errors
