"""Building a task's opening conversation, and what the model sees of a tool result.

Everything here is redacted on the way in: the model never receives a secret value, not
even one a user pasted into a description.
"""

from __future__ import annotations

from typing import Any

from evershell.agent.adapters import Message, ToolCall
from evershell.agent.tools import ToolOutcome
from evershell.secrets.redaction import Redactor

WORKSPACE_NOTE = (
    "You work in a sandboxed workspace. /data/work is the working directory (it persists "
    "between tasks), /data/uploads/ holds files the user uploaded, and /data/packs/ holds "
    "read-only reference material.")
CONTINUE_PROMPT = ("[Your reply was cut off by the output limit. Continue exactly where it "
                   "stopped, without repeating anything.]")


def system_text(system_prompt: str, pack_listing: list[str], redactor: Redactor) -> str:
    """The role's system prompt, then a note on the workspace and its packs
    (``pack_listing`` holds pack names or their ``/data/packs/<name>/`` paths)."""
    if pack_listing:
        packs = "Packs mounted read-only:\n" + "\n".join(
            f"- {_pack_path(entry)}" for entry in pack_listing)
    else:
        packs = "No packs are mounted."
    parts = [system_prompt.strip(), WORKSPACE_NOTE, packs]
    return redactor.redact("\n\n".join(part for part in parts if part))


def _pack_path(entry: str) -> str:
    """A pack listing entry as a path: ``/data/packs/x/`` as given, ``x`` under packs."""
    return entry if entry.startswith("/") else f"/data/packs/{entry.strip('/')}/"


def opening_messages(history: list[tuple[str, str]], description: str, uploads: list[str],
                     redactor: Redactor) -> tuple[list[Message], Message]:
    """Earlier tasks as user/assistant pairs (oldest first), then this task's description
    with its uploads; returns the messages and the description message itself."""
    messages: list[Message] = []
    for earlier, result in history:
        messages.append(Message(role="user", content=redactor.redact(earlier)))
        messages.append(Message(role="assistant",
                                content=redactor.redact(result or "(no result)")))
    text = description
    if uploads:
        text += "\n\nFiles uploaded with this task:\n" + "\n".join(f"- {p}" for p in uploads)
    task = Message(role="user", content=redactor.redact(text))
    messages.append(task)
    return messages, task


def redact_value(value: Any, redactor: Redactor) -> Any:
    """``value`` (tool arguments: dicts, lists, strings…) with every string redacted."""
    if isinstance(value, str):
        return redactor.redact(value)
    if isinstance(value, dict):
        return {redact_value(k, redactor): redact_value(v, redactor) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(item, redactor) for item in value]
    return value


def shown_call(call: ToolCall, redactor: Redactor) -> ToolCall:
    """The call as it is emitted and sent back to the model: arguments redacted."""
    return ToolCall(id=call.id, name=call.name,
                    arguments=redact_value(call.arguments, redactor))


def result_for_model(name: str, outcome: ToolOutcome) -> str:
    """The tool message the model reads: output, or the error, with exit code and limit."""
    if outcome.error is not None and not outcome.output:
        return f"error: {outcome.error}"
    parts = [outcome.output]
    if name == "shell":
        parts.append(f"[exit code: {outcome.exit_code}]")
    if outcome.limit and outcome.limit != "output":
        parts.append(f"[stopped by the {outcome.limit} limit]")
    if outcome.error is not None:
        parts.append(f"error: {outcome.error}")
    return "\n".join(part for part in parts if part)


def tool_result_event(call: ToolCall, outcome: ToolOutcome) -> dict:
    """The ``tool.result`` event data."""
    return {"id": call.id, "name": call.name, "ok": outcome.ok, "output": outcome.output,
            "error": outcome.error, "exit_code": outcome.exit_code,
            "duration_seconds": outcome.duration_seconds, "cpu_seconds": outcome.cpu_seconds,
            "peak_memory_bytes": outcome.peak_memory_bytes, "limit": outcome.limit}
