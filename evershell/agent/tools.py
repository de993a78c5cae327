"""The tools a model may call (SPEC §7) and running one call in the sandbox.

Every model gets the same JSON argument schemas (:data:`TOOL_SPECS`); a ``scripted``
provider's steps call the tools by the same names. What goes wrong with a call — a tool
the role does not allow, arguments that do not match the schema, a path outside
``/data``, a write under ``/data/packs`` — is a tool error the model sees
(:attr:`ToolOutcome.error`), never a task failure. A sandbox that cannot run at all
(the workspace is not live, the host is not ready) raises :class:`SandboxError` for the
loop to fail the task with ``sandbox_error``.
"""

from __future__ import annotations

import codecs
import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from evershell.agent.adapters import ToolCall
from evershell.agent.files import list_directory, read_text
from evershell.agent.schema import argument_errors
from evershell.sandbox import Limits, PathNotFound, PathRefused
from evershell.sandbox.execution import truncation_marker
from evershell.sandbox.limits import budget_for
from evershell.sandbox.paths import sandbox_relative
from evershell.secrets.redaction import Redactor

_INT = {"type": "integer", "minimum": 1}
TOOL_SPECS: dict[str, dict] = {
    "shell": {"name": "shell", "description": (
        "Run a command with /bin/sh -c in the workspace, /data/work as the working "
        "directory. Returns the combined stdout and stderr (cut at the role's output "
        "limit, marked when cut), the exit code and the resources used."),
        "input_schema": {"type": "object", "additionalProperties": False,
                         "required": ["command"], "properties": {
                             "command": {"type": "string", "minLength": 1},
                             "timeout_seconds": {**_INT, "description": (
                                 "Stop the command after this many seconds (never more "
                                 "than the role's wall_seconds limit).")}}}},
    "read_file": {"name": "read_file", "description": (
        "Read a text file under /data (uploads, work and the read-only packs). Paths are "
        "absolute under /data or relative to /data/work."),
        "input_schema": {"type": "object", "additionalProperties": False,
                         "required": ["path"], "properties": {
                             "path": {"type": "string", "minLength": 1},
                             "offset": {**_INT, "description": "First line to read (1 = "
                                                               "the first line)."},
                             "limit": {**_INT, "description": "How many lines to read."}}}},
    "write_file": {"name": "write_file", "description": (
        "Create or overwrite a file under /data/work or /data/uploads (not /data/packs) "
        "with the given text. Paths are absolute under /data or relative to /data/work."),
        "input_schema": {"type": "object", "additionalProperties": False,
                         "required": ["path", "content"], "properties": {
                             "path": {"type": "string", "minLength": 1},
                             "content": {"type": "string"}}}},
    "list_files": {"name": "list_files", "description": (
        "List a directory under /data (default /data/work): type, size and path of each "
        "entry."),
        "input_schema": {"type": "object", "additionalProperties": False,
                         "properties": {"path": {"type": "string", "minLength": 1}}}},
}


@dataclass
class ToolOutcome:
    """What one tool call did. ``output`` is what the model sees (redacted when the
    caller gave a redactor, cut at ``max_output_bytes`` with a marker); ``error`` is a
    tool error the model sees; ``cancelled`` is set when the task's cancel stopped it."""

    ok: bool
    output: str = ""
    exit_code: int | None = None
    duration_seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_memory_bytes: int | None = None
    limit: str | None = None
    error: str | None = None
    cancelled: bool = False


def specs_for(allowed: set[str]) -> list[dict]:
    """The tool specs of the tools in ``allowed``, in a stable order."""
    return [spec for name, spec in TOOL_SPECS.items() if name in allowed]


def describe(call: ToolCall) -> str:
    """A short line naming what a call runs (``shell: sleep 600``)."""
    args = call.arguments if isinstance(call.arguments, dict) else {}
    detail = args.get("command") if call.name == "shell" else args.get("path")
    text = f"{call.name}: {detail}" if isinstance(detail, str) else call.name
    return text if len(text) <= 200 else text[:199] + "…"


def run_tool(call: ToolCall, *, backend, workspace_id: str, uid: int, allowed: set[str],
             limits: Limits, env: dict[str, str], cancel: threading.Event | None,
             on_output: Callable[[str], None] | None,
             redactor: Redactor | None = None) -> ToolOutcome:
    """Run one tool call in the workspace's sandbox and say what happened.

    ``on_output`` receives shell output as it comes (redacted, with the stream hold-back).
    """
    redactor = redactor or Redactor({})
    started = time.monotonic()
    error = _refusal(call, allowed)
    if error is not None:
        return ToolOutcome(ok=False, error=redactor.redact(error))
    try:
        outcome = _TOOLS[call.name](call.arguments, backend=backend, workspace_id=workspace_id,
                                    uid=uid, limits=limits, env=env, cancel=cancel,
                                    on_output=on_output, redactor=redactor)
    except (PathRefused, PathNotFound) as refused:
        outcome = ToolOutcome(ok=False, error=redactor.redact(str(refused)))
    if not outcome.duration_seconds:
        outcome.duration_seconds = round(time.monotonic() - started, 3)
    return outcome


def _refusal(call: ToolCall, allowed: set[str]) -> str | None:
    if call.name not in TOOL_SPECS:
        return f"unknown tool {call.name!r}; the tools are: {', '.join(TOOL_SPECS)}"
    if call.name not in allowed:
        granted = ", ".join(name for name in TOOL_SPECS if name in allowed) or "none"
        return f"the role does not allow the tool {call.name!r} (allowed: {granted})"
    if not isinstance(call.arguments, dict):
        return "the arguments must be a JSON object"
    if "__invalid__" in call.arguments:
        return "the arguments are not valid JSON: " + str(call.arguments["__invalid__"])[:500]
    problems = argument_errors(call.arguments, TOOL_SPECS[call.name]["input_schema"])
    if problems:
        return f"invalid arguments for {call.name}: " + "; ".join(problems)
    return None


def _shell(args: dict, *, backend, workspace_id, uid, limits, env, cancel, on_output,
           redactor) -> ToolOutcome:
    budget = budget_for(limits)
    wall = min(args.get("timeout_seconds", budget.wall_seconds), budget.wall_seconds)
    stream = redactor.stream()
    decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def forward(chunk: bytes) -> None:
        text = stream.feed(decoder.decode(chunk))
        if text:
            on_output(text)

    result = backend.exec(workspace_id, uid, args["command"], env=env,
                          limits=dataclasses.replace(limits, wall_seconds=wall),
                          on_output=forward if on_output else None, cancel=cancel)
    if on_output:
        rest = stream.flush()
        if rest:
            on_output(rest)
    raw = result.output
    marker = truncation_marker(budget.max_output_bytes)
    if result.output_truncated and raw.endswith(marker):
        text = redactor.redact_cut(raw[:-len(marker)].decode("utf-8", "replace"))
        text += marker.decode()
    else:
        text = redactor.redact(raw.decode("utf-8", "replace"))
    ok = result.exit_code == 0 and result.limit in (None, "output") and not result.cancelled
    return ToolOutcome(
        ok=ok, output=text, exit_code=result.exit_code,
        duration_seconds=round(result.duration_seconds, 3),
        cpu_seconds=round(result.cpu_seconds, 3), peak_memory_bytes=result.peak_memory_bytes,
        limit=result.limit, cancelled=result.cancelled,
        error="cancelled" if result.cancelled else None)


def _read_file(args: dict, *, backend, workspace_id, limits, redactor, **_) -> ToolOutcome:
    with backend.open_file(workspace_id, args["path"]) as handle:
        text = read_text(handle, offset=args.get("offset", 1), limit=args.get("limit"),
                         max_bytes=budget_for(limits).max_output_bytes, redactor=redactor)
    return ToolOutcome(ok=True, output=text)


def _write_file(args: dict, *, backend, workspace_id, uid, limits, redactor,
                **_) -> ToolOutcome:
    data = args["content"].encode()
    if len(data) > budget_for(limits).disk_mb << 20:
        return ToolOutcome(ok=False, error="the content is larger than the role's disk_mb")
    backend.write_file(workspace_id, uid, args["path"], data)
    shown = "/data/" + sandbox_relative(args["path"])
    return ToolOutcome(ok=True, output=redactor.redact(f"wrote {len(data)} bytes to {shown}"))


def _list_files(args: dict, *, backend, workspace_id, limits, redactor, **_) -> ToolOutcome:
    entries = backend.list_files(workspace_id, args.get("path", "/data/work"))
    text = list_directory(entries, max_bytes=budget_for(limits).max_output_bytes,
                          redactor=redactor)
    return ToolOutcome(ok=True, output=text)


_TOOLS = {"shell": _shell, "read_file": _read_file, "write_file": _write_file,
          "list_files": _list_files}
