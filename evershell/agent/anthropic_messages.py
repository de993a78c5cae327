"""The ``anthropic`` adapter: the Messages API through the official SDK, streamed.

- Tools are given as Anthropic tools (our specs already have ``input_schema``); tool
  results go back as ``tool_result`` blocks of a user turn, consecutive ones merged.
- ``thinking_effort`` becomes extended thinking with a token budget (low/medium/high,
  :data:`THINKING_BUDGETS`) on models that have it; the reply's output limit grows by
  the budget. Thinking blocks (with their signatures) are replayed with the assistant
  turn they came with, as the API requires during tool use; their text is not emitted.
- Prompt caching: the system prompt, the tools and the newest turn carry cache
  breakpoints, so each step of a tool loop re-reads the conversation from the cache.
- Usage counts cached input as input (``cache_read`` and ``cache_creation`` included).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable

from evershell.agent.adapters import Message, ModelReply, ModelRequest, ToolCall
from evershell.agent.budget import estimate_tokens
from evershell.agent.remote import RemoteAdapter
from evershell.providers.clients import ProviderFailure, anthropic_client

THINKING_BUDGETS = {"low": 2048, "medium": 6144, "high": 16384}
# Claude models before 3.7 have no extended thinking; later ones (and unknown names,
# e.g. new releases) are sent it.
_NO_THINKING = re.compile(r"^claude-(instant|2|3-(?!7))")
_STOP_REASONS = {"tool_use": "tool_use", "max_tokens": "max_tokens"}
CACHE = {"type": "ephemeral"}


def thinks(model: str) -> bool:
    """Whether ``model`` takes extended thinking."""
    return not _NO_THINKING.match(model)


def _tool_input(call: ToolCall) -> dict:
    args = call.arguments
    return {} if not isinstance(args, dict) or "__invalid__" in args else args


def wire_messages(messages: list[Message]) -> list[dict]:
    """Our conversation as Messages API turns (alternating user/assistant)."""
    out: list[dict] = []
    for message in messages:
        if message.role == "assistant":
            role = "assistant"
            blocks = [dict(block) for block in message.replay or []]
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            blocks += [{"type": "tool_use", "id": call.id, "name": call.name,
                        "input": _tool_input(call)} for call in message.tool_calls]
            if not blocks:
                blocks = [{"type": "text", "text": "(no reply)"}]
        elif message.role == "tool":
            role = "user"
            blocks = [{"type": "tool_result", "tool_use_id": message.tool_call_id,
                       "content": message.content or "(no output)"}]
        else:
            role = "user"
            blocks = [{"type": "text", "text": message.content or "(empty)"}]
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    if out:
        last = out[-1]["content"][-1]
        if last["type"] in ("text", "tool_result", "tool_use"):
            last["cache_control"] = CACHE
    return out


def wire_tools(specs: list[dict]) -> list[dict]:
    tools = [{"name": s["name"], "description": s["description"],
              "input_schema": s["input_schema"]} for s in specs]
    if tools:
        tools[-1]["cache_control"] = CACHE
    return tools


class AnthropicAdapter(RemoteAdapter):
    label = "Anthropic"
    kind = "anthropic"

    def _make_client(self):
        return anthropic_client(self.base_url, self.api_key or "", self.timeout, self.backend)

    def extra_output_tokens(self, thinking_effort: str) -> int:
        return THINKING_BUDGETS[thinking_effort] if thinks(self.model) else 0

    def notes(self, thinking_effort: str) -> list[str]:
        if thinks(self.model):
            return [f"thinking_effort {thinking_effort}: extended thinking with a budget "
                    f"of {THINKING_BUDGETS[thinking_effort]} tokens"]
        return [f"thinking_effort is ignored: {self.model} has no extended thinking"]

    def params(self, request: ModelRequest) -> dict:
        """The Messages API request for ``request`` (streamed)."""
        params = {
            "model": self.model,
            "system": [{"type": "text", "text": request.system, "cache_control": CACHE}],
            "messages": wire_messages(request.messages),
            "max_tokens": request.max_output_tokens,
        }
        tools = wire_tools(request.tools)
        if tools:
            params["tools"] = tools
        if thinks(self.model):
            budget = THINKING_BUDGETS[request.thinking_effort]
            params["thinking"] = {"type": "enabled", "budget_tokens": budget}
            params["max_tokens"] = request.max_output_tokens + budget
        return params

    def _stream(self, request: ModelRequest, on_text: Callable[[str], None],
                cancel: threading.Event) -> ModelReply:
        blocks: dict[int, dict] = {}
        usage = {"input": 0, "output": 0}
        stop_reason = None
        stream = self.client.messages.create(stream=True, **self.params(request))
        with stream:
            for event in stream:
                kind = event.type
                if kind == "message_start":
                    usage["input"] = _input_tokens(event.message.usage)
                    usage["output"] = event.message.usage.output_tokens or 0
                elif kind == "content_block_start":
                    blocks[event.index] = _start_block(event.content_block, on_text)
                elif kind == "content_block_delta":
                    _add_delta(blocks.get(event.index), event.delta, on_text)
                elif kind == "message_delta":
                    stop_reason = event.delta.stop_reason or stop_reason
                    if event.usage is not None:
                        usage["output"] = event.usage.output_tokens or usage["output"]
                        reported = _input_tokens(event.usage)
                        usage["input"] = reported or usage["input"]
        if stop_reason is None:
            raise ProviderFailure("provider_server_error",
                                  "Anthropic's stream ended before the reply was complete.",
                                  retryable=True)
        return _reply([blocks[i] for i in sorted(blocks)], stop_reason, usage, request)


def _input_tokens(usage) -> int:
    return sum(getattr(usage, name, None) or 0 for name in (
        "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))


def _start_block(block, on_text: Callable[[str], None]) -> dict:
    kind = block.type
    if kind == "text":
        if block.text:
            on_text(block.text)
        return {"type": "text", "text": block.text or ""}
    if kind == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "json": ""}
    if kind == "thinking":
        return {"type": "thinking", "thinking": block.thinking or "",
                "signature": getattr(block, "signature", None) or ""}
    if kind == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.data}
    return {"type": kind}


def _add_delta(block: dict | None, delta, on_text: Callable[[str], None]) -> None:
    if block is None:
        return
    kind = delta.type
    if kind == "text_delta":
        block["text"] += delta.text
        on_text(delta.text)
    elif kind == "input_json_delta":
        block["json"] += delta.partial_json
    elif kind == "thinking_delta":
        block["thinking"] += delta.thinking
    elif kind == "signature_delta":
        block["signature"] = delta.signature


def _reply(blocks: list[dict], stop_reason: str, usage: dict,
           request: ModelRequest) -> ModelReply:
    text = "".join(block["text"] for block in blocks if block["type"] == "text")
    stop = _STOP_REASONS.get(stop_reason, "end_turn")
    calls = []
    for block in blocks:
        if block["type"] != "tool_use":
            continue
        try:
            arguments = json.loads(block["json"]) if block["json"].strip() else {}
        except ValueError:
            if stop == "max_tokens":
                continue  # cut off mid-call: the continuation asks for it again
            arguments = {"__invalid__": block["json"]}
        if not isinstance(arguments, dict):
            arguments = {"__invalid__": block["json"]}
        calls.append(ToolCall(id=block["id"], name=block["name"], arguments=arguments))
    # A thinking block is sent back only whole: one cut off before its signature would
    # be refused, and the continuation does without it.
    replay = [dict(block) for block in blocks
              if (block["type"] == "thinking" and block["signature"])
              or block["type"] == "redacted_thinking"]
    if stop == "tool_use" and not calls:
        stop = "end_turn"
    return ModelReply(
        text=text, tool_calls=calls,
        input_tokens=usage["input"] or estimate_tokens(
            request.system + "".join(m.content for m in request.messages)),
        output_tokens=usage["output"] or estimate_tokens(text),
        stop_reason=stop, replay=replay)
