"""Sandbox environment profiles, defined by the operator (``EVERSHELL_ENVIRONMENTS``).

The setting is a JSON object: profile name → ``{"description": str, "limits": {name:
ceiling}}``. A profile's limits are ceilings over what a role's caps ask for (an operator
can keep a ``small`` profile at 512 MB whatever a role says). ``default`` always exists,
with no ceilings, unless the setting defines it otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from evershell.core.errors import validation_error
from evershell.roles.capset import LIMITS

DEFAULT = "default"


@dataclass(frozen=True)
class Environment:
    name: str
    description: str = ""
    limits: dict[str, int] = field(default_factory=dict)

    def cap(self, limits: dict[str, int]) -> dict[str, int]:
        """``limits`` (a role's) held under this profile's ceilings."""
        return {name: min(value, self.limits.get(name, value))
                for name, value in limits.items()}


def parse(text: str | None) -> dict[str, Environment]:
    """Profiles from the setting's text; a ``ValueError`` names what is wrong."""
    profiles: dict[str, Environment] = {DEFAULT: Environment(DEFAULT, "The default sandbox.")}
    if not text:
        return profiles
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"EVERSHELL_ENVIRONMENTS is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("EVERSHELL_ENVIRONMENTS must be a JSON object of profiles")
    for name, spec in data.items():
        if not isinstance(spec, dict):
            raise ValueError(f"environment {name!r} must be an object")
        limits = spec.get("limits", {})
        unknown = set(limits) - set(LIMITS)
        if unknown or not all(isinstance(v, int) and v > 0 for v in limits.values()):
            raise ValueError(f"environment {name!r}: limits must be positive integers of "
                             f"{sorted(LIMITS)}")
        profiles[name] = Environment(name, str(spec.get("description", "")), dict(limits))
    return profiles


def available() -> dict[str, Environment]:
    cache = current_app.extensions.setdefault("evershell-environments", {})
    text = current_app.config.get("ENVIRONMENTS")
    if text not in cache:
        cache[text] = parse(text)
    return cache[text]


def resolve(name: str | None) -> Environment:
    """The named profile (``default`` when none is named); 400 on an unknown name."""
    profiles = available()
    name = name or DEFAULT
    if name not in profiles:
        raise validation_error({"environment": [
            f"Unknown environment {name!r}; this server offers: "
            f"{', '.join(sorted(profiles))}."]})
    return profiles[name]
