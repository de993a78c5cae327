"""The provider adapter interface the loop calls, and the ``scripted`` adapter.

An adapter turns one :class:`ModelRequest` into one :class:`ModelReply`, streaming the
reply's text through ``on_text`` as it comes. It knows nothing of sandboxes, events or
the database; real providers (Anthropic, OpenAI) come behind the same interface.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from evershell.agent.budget import estimate_tokens
from evershell.providers.script import normalise, script_errors


class AdapterError(Exception):
    """The provider failed to give a reply (the task fails with ``provider_error``)."""


class ScriptEnded(AdapterError):
    """A scripted provider was called once more than its script has steps."""


class Cancelled(Exception):
    """The call was abandoned because the task's cancel Event was set."""


@dataclass
class ToolCall:
    """A tool call as the model made it. ``arguments`` as parsed; invalid JSON from a
    real model arrives as ``{"__invalid__": raw}``."""

    id: str
    name: str
    arguments: dict


@dataclass
class Message:
    """One conversation message: ``user``, ``assistant`` (text and/or tool calls) or
    ``tool`` (one result, tied to its call by ``tool_call_id``)."""

    role: str
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    tool_name: str | None = None
    # Provider blocks an assistant turn must be sent back with, as they came (Anthropic's
    # signed thinking blocks); opaque to everything but the adapter that made them.
    replay: list[dict] | None = None


@dataclass
class ModelRequest:
    """Everything one model call sends; ``tools`` are JSON-schema tool specs."""

    system: str
    messages: list[Message]
    tools: list[dict]
    thinking_effort: str
    max_output_tokens: int


@dataclass
class ModelReply:
    """One assistant turn; ``stop_reason`` is ``end_turn``, ``tool_use`` or ``max_tokens``."""

    text: str
    tool_calls: list[ToolCall]
    input_tokens: int
    output_tokens: int
    stop_reason: str
    replay: list[dict] | None = None


class ModelAdapter(Protocol):
    """What the loop calls, once per model call."""

    def complete(self, request: ModelRequest, *, on_text: Callable[[str], None],
                 cancel: threading.Event) -> ModelReply:
        """The model's reply to ``request``, its text streamed through ``on_text``."""

    def notes(self, thinking_effort: str) -> list[str]:
        """What ``task.started`` says about how ``thinking_effort`` is used."""

    def extra_output_tokens(self, thinking_effort: str) -> int:
        """Output tokens a reply may spend beyond its text (a thinking budget): the
        loop keeps them free in the context budget."""

    def close(self) -> None:
        """Release what the adapter holds (connections); called once, when the task's
        loop ends however it ends."""


STREAM_CHUNKS = 4


# In a scripted step's text, replaced by what the last tool returned (as the model saw
# it, so already redacted): lets a script answer with a program's output.
LAST_TOOL_OUTPUT = "{last_tool_output}"


def _last_tool_output(request: ModelRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "tool":
            lines = message.content.rstrip("\n").split("\n")
            if lines and lines[-1].startswith("[exit code:"):
                lines = lines[:-1]
            return "\n".join(lines).rstrip()
    return ""


class ScriptedAdapter:
    """Plays a ``scripted`` provider's steps: step k answers the k-th call of the task
    (one adapter per task, so every task starts at step 1). A step without tool calls is
    the final answer; a call past the last step raises :class:`ScriptEnded`."""

    def __init__(self, script: list[dict]) -> None:
        errors = script_errors(script)
        if errors is not None:
            raise ValueError(f"invalid script: {errors}")
        self.steps = normalise(script)
        self.calls = 0

    def notes(self, thinking_effort: str) -> list[str]:
        return ["thinking_effort is not used by a scripted provider"]

    def extra_output_tokens(self, thinking_effort: str) -> int:
        return 0

    def close(self) -> None:
        pass

    def complete(self, request: ModelRequest, *, on_text: Callable[[str], None],
                 cancel: threading.Event) -> ModelReply:
        """The next step, its text streamed in a few chunks."""
        self.calls += 1
        if self.calls > len(self.steps):
            raise ScriptEnded(f"the script has {len(self.steps)} steps and the task asked "
                              f"for step {self.calls}")
        step = self.steps[self.calls - 1]
        text = step.get("text", "").replace(LAST_TOOL_OUTPUT, _last_tool_output(request))
        size = max(1, -(-len(text) // STREAM_CHUNKS))
        for start in range(0, len(text), size):
            if cancel.is_set():
                raise Cancelled("cancelled while the reply was streaming")
            on_text(text[start:start + size])
        calls = [ToolCall(id=f"call_{self.calls}_{index}", name=spec["name"],
                          arguments=dict(spec.get("arguments") or {}))
                 for index, spec in enumerate(step.get("tool_calls") or [], start=1)]
        sent = request.system + "".join(m.content for m in request.messages)
        return ModelReply(text=text, tool_calls=calls, input_tokens=estimate_tokens(sent),
                          output_tokens=estimate_tokens(text) + 10 * len(calls),
                          stop_reason="tool_use" if calls else "end_turn")


def adapter_for(provider_kind: str, *, model: str = "", script: list[dict] | None = None,
                base_url: str | None = None, api_key: str | None = None) -> ModelAdapter:
    """A fresh adapter for one task of a provider of ``provider_kind``."""
    if provider_kind == "scripted":
        if script is None:
            raise ValueError("a scripted provider needs its script")
        return ScriptedAdapter(script)
    if provider_kind == "anthropic":
        from evershell.agent.anthropic_messages import AnthropicAdapter
        return AnthropicAdapter(model=model, base_url=base_url, api_key=api_key)
    if provider_kind in ("openai", "openai_compatible"):
        from evershell.agent.openai_chat import OpenAIAdapter
        return OpenAIAdapter(model=model, base_url=base_url, api_key=api_key,
                             compatible=provider_kind == "openai_compatible")
    raise ValueError(f"unknown provider kind {provider_kind!r}")
