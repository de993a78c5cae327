"""The script of a ``scripted`` provider: the assistant turns it plays, in order.

A script is a list of steps; each step is one assistant turn with optional ``text`` and
optional ``tool_calls`` (``[{"name", "arguments": {...}}]``), and at least one of them.
Nothing else is accepted, so the adapter can trust what it reads. In a step's text,
``{last_tool_output}`` stands for what the last tool call returned (so a script can
answer with the output of a program it ran). The
same schema documents the API body and validates console input.
"""

from __future__ import annotations

import json
from typing import Any

import marshmallow as ma

MAX_STEPS = 200
MAX_TOOL_CALLS_PER_STEP = 32
MAX_SCRIPT_BYTES = 64 * 1024  # of the script as compact JSON
TOOL_NAME = r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"


class ScriptToolCallSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Regexp(
        TOOL_NAME, error="A tool name is 1-64 letters, digits, '_', '.' or '-', starting "
                         "with a letter or '_'."),
        metadata={"description": "The tool the assistant calls: `shell`, `read_file`, "
                                 "`write_file` or `list_files` (GET /v1/capabilities)"})
    arguments = ma.fields.Dict(keys=ma.fields.String(), load_default=dict, metadata={
        "description": "The call's arguments (a JSON object)"})


class ScriptStepSchema(ma.Schema):
    """One assistant turn."""

    text = ma.fields.String(validate=ma.validate.Length(min=1), metadata={
        "description": "What the assistant says"})
    tool_calls = ma.fields.List(
        ma.fields.Nested(ScriptToolCallSchema),
        validate=ma.validate.Length(min=1, max=MAX_TOOL_CALLS_PER_STEP))

    @ma.validates_schema
    def _says_or_does_something(self, data: dict, **_kwargs) -> None:
        if "text" not in data and "tool_calls" not in data:
            raise ma.ValidationError("A step needs text, tool_calls or both.", "_schema")


def script_errors(value: Any) -> Any:
    """Marshmallow-shaped error messages for ``value`` as a script, or None when valid."""
    if not isinstance(value, list):
        return ["A script is a list of steps."]
    if not value:
        return ["A script needs at least one step."]
    if len(value) > MAX_STEPS:
        return [f"A script has at most {MAX_STEPS} steps."]
    try:
        ScriptStepSchema(many=True).load(value)
    except ma.ValidationError as exc:
        return exc.messages
    if len(json.dumps(value, separators=(",", ":"))) > MAX_SCRIPT_BYTES:
        return [f"A script is at most {MAX_SCRIPT_BYTES // 1024} KiB as JSON."]
    return None


def normalise(value: list) -> list[dict]:
    """A valid script as stored: only the known keys, arguments always present."""
    return ScriptStepSchema(many=True).load(value)
