"""The ``openai`` and ``openai_compatible`` adapters: Chat Completions through the
official SDK, streamed, at any base URL (OpenAI, vLLM, Ollama, llama.cpp's server).

- Tools are given as ``function`` tools with our JSON schemas as ``parameters``; tool
  call arguments arrive as streamed JSON fragments and are joined per call index.
- ``thinking_effort`` becomes ``reasoning_effort`` on OpenAI's reasoning models (o1, o3,
  o4, gpt-5 …), whose output limit (``max_completion_tokens``) then also covers the
  reasoning; other models and ``openai_compatible`` servers are not sent it, and the
  task's ``task.started`` notes say so. Compatible servers get ``max_tokens``, which
  every one of them reads.
- Usage comes from the final chunk (``stream_options.include_usage``); a server that
  sends none is estimated.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable

from evershell.agent.adapters import Message, ModelReply, ModelRequest, ToolCall
from evershell.agent.anthropic_messages import THINKING_BUDGETS
from evershell.agent.budget import estimate_tokens
from evershell.agent.remote import RemoteAdapter
from evershell.providers.clients import ProviderFailure, openai_client

# Models that take reasoning_effort (o1-mini, o1-preview and gpt-5-chat do not).
_REASONING = re.compile(r"^(o1(?!-mini|-preview)|o3|o4|gpt-5(?!-chat))")
_FINISH = {"tool_calls": "tool_use", "function_call": "tool_use", "length": "max_tokens"}


def reasons(model: str) -> bool:
    """Whether an OpenAI ``model`` takes ``reasoning_effort``."""
    return bool(_REASONING.match(model))


def wire_messages(system: str, messages: list[Message]) -> list[dict]:
    """Our conversation as Chat Completions messages."""
    out: list[dict] = [{"role": "system", "content": system}]
    for message in messages:
        if message.role == "assistant":
            entry: dict = {"role": "assistant", "content": message.content or None}
            if message.tool_calls:
                entry["tool_calls"] = [{
                    "id": call.id, "type": "function",
                    "function": {"name": call.name, "arguments": _arguments(call)}}
                    for call in message.tool_calls]
            elif not message.content:
                entry["content"] = ""
            out.append(entry)
        elif message.role == "tool":
            out.append({"role": "tool", "tool_call_id": message.tool_call_id,
                        "content": message.content or "(no output)"})
        else:
            out.append({"role": "user", "content": message.content})
    return out


def _arguments(call: ToolCall) -> str:
    args = call.arguments
    if isinstance(args, dict) and "__invalid__" in args:
        return str(args["__invalid__"])
    return json.dumps(args)


def wire_tools(specs: list[dict]) -> list[dict]:
    return [{"type": "function", "function": {
        "name": s["name"], "description": s["description"], "parameters": s["input_schema"]}}
        for s in specs]


class OpenAIAdapter(RemoteAdapter):
    """``compatible``: an ``openai_compatible`` server (no OpenAI-only parameters)."""

    def __init__(self, *, compatible: bool = False, **config) -> None:
        super().__init__(**config)
        self.compatible = compatible
        self.kind = "openai_compatible" if compatible else "openai"
        self.label = "the OpenAI-compatible server" if compatible else "OpenAI"

    def _make_client(self):
        return openai_client(self.base_url, self.api_key, self.timeout, self.backend)

    def extra_output_tokens(self, thinking_effort: str) -> int:
        return THINKING_BUDGETS[thinking_effort] if self._reasoning() else 0

    def _reasoning(self) -> bool:
        return not self.compatible and reasons(self.model)

    def notes(self, thinking_effort: str) -> list[str]:
        if self._reasoning():
            return [f"thinking_effort {thinking_effort}: reasoning_effort {thinking_effort}"]
        if self.compatible:
            return ["thinking_effort is ignored: OpenAI-compatible servers have no common "
                    "setting for it"]
        return [f"thinking_effort is ignored: {self.model} does not take reasoning_effort"]

    def params(self, request: ModelRequest) -> dict:
        """The Chat Completions request for ``request`` (streamed)."""
        params: dict = {
            "model": self.model,
            "messages": wire_messages(request.system, request.messages),
            "stream": True, "stream_options": {"include_usage": True},
        }
        tools = wire_tools(request.tools)
        if tools:
            params["tools"] = tools
        if self.compatible:
            params["max_tokens"] = request.max_output_tokens
        elif self._reasoning():
            params["reasoning_effort"] = request.thinking_effort
            params["max_completion_tokens"] = (request.max_output_tokens
                                               + THINKING_BUDGETS[request.thinking_effort])
        else:
            params["max_completion_tokens"] = request.max_output_tokens
        return params

    def _stream(self, request: ModelRequest, on_text: Callable[[str], None],
                cancel: threading.Event) -> ModelReply:
        text: list[str] = []
        calls: dict[int, dict] = {}
        usage = None
        finish = None
        stream = self.client.chat.completions.create(**self.params(request))
        with stream:
            for chunk in stream:
                if getattr(chunk, "usage", None) is not None:
                    usage = chunk.usage
                for choice in chunk.choices or []:
                    if choice.index != 0:
                        continue
                    delta = choice.delta
                    if delta is not None and delta.content:
                        text.append(delta.content)
                        on_text(delta.content)
                    for part in (delta.tool_calls or []) if delta is not None else []:
                        slot = calls.setdefault(part.index if part.index is not None
                                                else len(calls),
                                                {"id": "", "name": "", "arguments": ""})
                        slot["id"] = part.id or slot["id"]
                        if part.function is not None:
                            slot["name"] = part.function.name or slot["name"]
                            slot["arguments"] += part.function.arguments or ""
                    finish = choice.finish_reason or finish
        if finish is None:
            raise ProviderFailure("provider_server_error",
                                  f"{self.label}'s stream ended before the reply was complete.",
                                  retryable=True)
        return self._reply("".join(text), [calls[i] for i in sorted(calls)], finish,
                           usage, request)

    def _reply(self, text: str, slots: list[dict], finish: str, usage,
               request: ModelRequest) -> ModelReply:
        stop = _FINISH.get(finish, "end_turn")
        tool_calls = []
        for number, slot in enumerate(slots, start=1):
            raw = slot["arguments"]
            try:
                arguments = json.loads(raw) if raw.strip() else {}
            except ValueError:
                if stop == "max_tokens":
                    continue  # cut off mid-call: the continuation asks for it again
                arguments = {"__invalid__": raw}
            if not isinstance(arguments, dict):
                arguments = {"__invalid__": raw}
            tool_calls.append(ToolCall(id=slot["id"] or f"call_{number}", name=slot["name"],
                                       arguments=arguments))
        if tool_calls and stop == "end_turn":
            stop = "tool_use"  # some servers finish a tool call with "stop"
        if stop == "tool_use" and not tool_calls:
            stop = "end_turn"
        sent = request.system + "".join(m.content for m in request.messages)
        return ModelReply(
            text=text, tool_calls=tool_calls,
            input_tokens=(getattr(usage, "prompt_tokens", None) or estimate_tokens(sent)),
            output_tokens=(getattr(usage, "completion_tokens", None)
                           or estimate_tokens(text) + 10 * len(tool_calls)),
            stop_reason=stop)
