"""The field rules of providers, by kind (the table is in ``services``' docstring).

Each rule returns the value to store or raises ``Invalid`` with marshmallow-shaped
messages; ``kind_fields`` runs them all so a caller learns every problem at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evershell.access.principal import Principal
from evershell.core.errors import ErrorCode, EvershellError
from evershell.providers import script as scripts
from evershell.providers import ssrf
from evershell.providers.models import ProviderKind
from evershell.secrets import services as secrets

K = ProviderKind
DEFAULT_BASE_URLS = {K.ANTHROPIC: "https://api.anthropic.com",
                     K.OPENAI: "https://api.openai.com/v1"}
SCRIPTED_DEFAULT_MODELS = ["scripted"]
KEY_REQUIRED = frozenset({K.ANTHROPIC, K.OPENAI})
MAX_NAME = 200
MAX_MODELS = 100
MAX_MODEL_NAME = 200
FIELDS = ("name", "kind", "base_url", "api_key_secret_id", "models", "script")
KIND_FIELDS = ("base_url", "api_key_secret_id", "models", "script")


class Invalid(Exception):
    """One field's problem; ``messages`` as marshmallow would report them."""

    def __init__(self, messages: Any) -> None:
        super().__init__(messages)
        self.messages = messages if isinstance(messages, list | dict) else [messages]


def check_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid("Name is required.")
    if len(value.strip()) > MAX_NAME:
        raise Invalid(f"At most {MAX_NAME} characters.")
    return value.strip()


def check_kind(value: Any) -> ProviderKind:
    try:
        return ProviderKind(value)
    except ValueError:
        raise Invalid(f"Must be one of: {', '.join(k.value for k in K)}.") from None


def _text(value: Any, message: str) -> str | None:
    """Strings only; empty means absent (what an HTML form sends for a blank field)."""
    if value is not None and not isinstance(value, str):
        raise Invalid(message)
    return (value or "").strip() or None


def base_url(kind: ProviderKind, value: Any) -> str | None:
    value = _text(value, "Must be a string.")
    if kind is K.SCRIPTED:
        if value is not None:
            raise Invalid("Scripted providers have no base URL.")
        return None
    if value is None:
        if kind in DEFAULT_BASE_URLS:
            return DEFAULT_BASE_URLS[kind]
        raise Invalid("Required for openai_compatible providers, e.g. "
                      "http://models.internal:8000/v1 (vLLM).")
    try:
        return ssrf.validate_base_url(value, ssrf.allow_private_networks())
    except ssrf.UnsafeURL as exc:
        raise Invalid(str(exc)) from None


def api_key_secret(actor: Principal, kind: ProviderKind, value: Any) -> str | None:
    value = _text(value, "Must be a string: the id of a secret (sec_…).")
    if kind is K.SCRIPTED:
        if value is not None:
            raise Invalid("Scripted providers use no API key.")
        return None
    if value is None:
        if kind in KEY_REQUIRED:
            raise Invalid(f"Required for {kind.value} providers: the id of the secret "
                          "holding the API key.")
        return None
    try:
        secrets.get(actor, value)
    except EvershellError as exc:
        if exc.code is not ErrorCode.SECRET_NOT_FOUND:
            raise
        # Another org's secret reads exactly like one that does not exist.
        raise Invalid(f"No secret {value!r} in this organisation.") from None
    return value


def models(kind: ProviderKind, value: Any) -> list[str]:
    if value is None and kind is K.SCRIPTED:
        return list(SCRIPTED_DEFAULT_MODELS)
    if not isinstance(value, list) or not value:
        raise Invalid("List at least one model name.")
    if len(value) > MAX_MODELS:
        raise Invalid(f"At most {MAX_MODELS} models.")
    names: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise Invalid("Model names are non-empty strings.")
        item = item.strip()
        if len(item) > MAX_MODEL_NAME:
            raise Invalid(f"A model name is at most {MAX_MODEL_NAME} characters.")
        if item in names:
            raise Invalid(f"{item!r} is listed twice.")
        names.append(item)
    return names


def script(kind: ProviderKind, value: Any) -> list | None:
    if kind is not K.SCRIPTED:
        if value is not None:
            raise Invalid("Only scripted providers have a script.")
        return None
    if value is None:
        raise Invalid("Scripted providers need a script: a list of assistant turns.")
    problems = scripts.script_errors(value)
    if problems:
        raise Invalid(problems)
    return scripts.normalise(value)


def kind_fields(actor: Principal, kind: ProviderKind, given: Mapping[str, Any],
                current: Mapping[str, Any], errors: dict) -> dict[str, Any]:
    """``base_url``, ``api_key_secret_id``, ``models`` and ``script`` after the kind's
    rules, from ``given`` over ``current``; problems go into ``errors``. Only what is
    given is checked against the outside world (DNS, secrets): an untouched base URL is
    not re-resolved on every rename."""
    rules = {"base_url": lambda v: base_url(kind, v),
             "api_key_secret_id": lambda v: api_key_secret(actor, kind, v),
             "models": lambda v: models(kind, v),
             "script": lambda v: script(kind, v)}
    result = {}
    for field, rule in rules.items():
        if field not in given and field in current:
            result[field] = current[field]
            continue
        try:
            result[field] = rule(given.get(field))
        except Invalid as exc:
            errors[field] = exc.messages
    return result


def unknown_fields(values: Mapping[str, Any]) -> dict:
    return {field: ["Unknown field."] for field in values if field not in FIELDS}
