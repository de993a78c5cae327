"""Checking tool arguments against the tools' JSON schemas.

The tool schemas use a small part of JSON Schema — an object with ``properties``,
``required``, ``additionalProperties: false``, and ``string`` (``minLength``) or
``integer`` (``minimum``) properties — so that part is checked here, without a
dependency, with messages a model can act on.
"""

from __future__ import annotations

_TYPES = {"string": str, "integer": int, "object": dict, "boolean": bool}


def argument_errors(arguments: dict, schema: dict) -> list[str]:
    """What is wrong with ``arguments`` for ``schema`` (empty when they are valid)."""
    properties = schema.get("properties", {})
    problems = [f"{name!r} is required" for name in schema.get("required", [])
                if name not in arguments]
    for name, value in arguments.items():
        spec = properties.get(name)
        if spec is None:
            if schema.get("additionalProperties", True) is False:
                known = ", ".join(properties) or "none"
                problems.append(f"unknown argument {name!r} (expected: {known})")
            continue
        kind = spec.get("type")
        expected = _TYPES.get(kind)
        # JSON has no separate booleans-as-integers: True is not an integer here.
        if expected is not None and (not isinstance(value, expected)
                                     or (kind == "integer" and isinstance(value, bool))):
            problems.append(f"{name!r} must be {'an' if kind == 'integer' else 'a'} {kind}")
            continue
        if kind == "string" and len(value) < spec.get("minLength", 0):
            problems.append(f"{name!r} must not be empty")
        if kind == "integer":
            if "minimum" in spec and value < spec["minimum"]:
                problems.append(f"{name!r} must be at least {spec['minimum']}")
            if "maximum" in spec and value > spec["maximum"]:
                problems.append(f"{name!r} must be at most {spec['maximum']}")
    return problems
