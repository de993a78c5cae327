"""The agent loop: one task, from its description to a final answer, cancel or failure.

The loop calls the model through an adapter, runs the tool calls it asks for in the
sandbox, feeds the results back, and reports everything through ``ctx.emit(type, data)``
(``message.delta``, ``message.created``, ``tool.call``, ``tool.result``). It never
touches the database or Redis: the tasks domain makes the context, appends the events
durably, and moves the task's status from the :class:`LoopOutcome`.

Everything emitted, returned or sent to the model passes through the task's redactor
first; streamed text goes through a stream redactor, whose hold-back catches a value
split across deltas.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from evershell.agent import conversation as conv
from evershell.agent.adapters import (
    Cancelled,
    Message,
    ModelAdapter,
    ModelRequest,
    ScriptEnded,
)
from evershell.agent.budget import Usage, estimate_tokens, fit
from evershell.agent.tools import describe, run_tool, specs_for
from evershell.providers.clients import ProviderFailure
from evershell.sandbox import Limits, SandboxError
from evershell.secrets.redaction import Redactor

DELTA_SECONDS = 0.1
DELTA_BYTES = 2048
MAX_OUTPUT_TOKENS = 8192
log = logging.getLogger(__name__)


@dataclass
class LoopContext:
    """Everything one task's loop needs; built by the tasks domain."""

    system_prompt: str
    history: list[tuple[str, str]]  # earlier tasks (description, result), oldest first
    pack_listing: list[str]
    description: str
    uploads: list[str]  # paths under /data/uploads/<task_id>/
    tools: set[str]
    limits: Limits
    env: dict[str, str]  # secret and credential env vars for exec
    redactor: Redactor  # knows every value exposed to the task
    adapter: ModelAdapter
    backend: object
    workspace_id: str
    uid: int
    max_continuations: int
    max_context_tokens: int
    thinking_effort: str
    emit: Callable[[str, dict], None]
    cancel: threading.Event = field(default_factory=threading.Event)
    max_output_tokens: int | None = None  # None: a quarter of the context, at most 8192


@dataclass
class LoopOutcome:
    """How the task ended; ``running`` says what was running when it was cancelled."""

    status: str  # succeeded | failed | cancelled
    result: str | None = None
    failure_code: str | None = None
    failure_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    tool_calls: int = 0
    model_calls: int = 0
    running: str | None = None


class _Deltas:
    """``message.delta`` events for one reply: redacted with hold-back, batched (every
    ``DELTA_SECONDS`` or ``DELTA_BYTES``, checked as text arrives), and flushed whole at
    the end of the reply, so nothing is dropped."""

    def __init__(self, emit: Callable[[str, dict], None], redactor: Redactor) -> None:
        self.emit, self.stream = emit, redactor.stream()
        self.pending: list[str] = []
        self.size, self.last = 0, time.monotonic()

    def feed(self, chunk: str) -> None:
        text = self.stream.feed(chunk)
        if text:
            self.pending.append(text)
            self.size += len(text)
        if self.size >= DELTA_BYTES or (
                self.size and time.monotonic() - self.last >= DELTA_SECONDS):
            self._send()

    def finish(self) -> None:
        rest = self.stream.flush()
        if rest:
            self.pending.append(rest)
        self._send()

    def _send(self) -> None:
        if self.pending:
            self.emit("message.delta", {"text": "".join(self.pending)})
        self.pending, self.size, self.last = [], 0, time.monotonic()


def run(ctx: LoopContext) -> LoopOutcome:
    """Run the task described by ``ctx`` to its end and say how it ended."""
    return _Loop(ctx).run()


class _Loop:
    def __init__(self, ctx: LoopContext) -> None:
        self.ctx, self.redactor = ctx, ctx.redactor
        self.counts = {"input_tokens": 0, "output_tokens": 0, "tool_calls": 0,
                       "model_calls": 0}

    def _end(self, status: str, **fields) -> LoopOutcome:
        for name in ("result", "failure_reason", "running"):
            if fields.get(name) is not None:
                fields[name] = self.redactor.redact(fields[name])
        return LoopOutcome(status=status, **fields, **self.counts)

    def _failed(self, code: str, reason: str) -> LoopOutcome:
        return self._end("failed", failure_code=code, failure_reason=reason)

    def run(self) -> LoopOutcome:
        try:
            return self._run()
        finally:
            self.ctx.adapter.close()

    def _run(self) -> LoopOutcome:
        ctx = self.ctx
        system = conv.system_text(ctx.system_prompt, ctx.pack_listing, self.redactor)
        messages, task = conv.opening_messages(ctx.history, ctx.description, ctx.uploads,
                                               self.redactor)
        specs = specs_for(ctx.tools)
        reply_tokens = ctx.max_output_tokens or max(
            256, min(MAX_OUTPUT_TOKENS, ctx.max_context_tokens // 4))
        thinking = min(ctx.adapter.extra_output_tokens(ctx.thinking_effort),
                       ctx.max_context_tokens // 4)
        budget = (ctx.max_context_tokens - reply_tokens - thinking
                  - estimate_tokens(json.dumps(specs)))
        usage: Usage | None = None
        carried = ""  # raw text of replies cut off by the output limit, continued since
        while True:
            if ctx.cancel.is_set():
                return self._end("cancelled")
            if self.counts["model_calls"] >= ctx.max_continuations:
                return self._failed("max_continuations_reached", (
                    f"the task made {ctx.max_continuations} model calls (its "
                    "max_continuations) without a final answer"))
            pinned = next(i for i, m in enumerate(messages) if m is task)
            messages = fit(messages, system, budget, usage, pinned=pinned)
            request = ModelRequest(system=system, messages=list(messages), tools=specs,
                                   thinking_effort=ctx.thinking_effort,
                                   max_output_tokens=reply_tokens)
            deltas = _Deltas(ctx.emit, self.redactor)
            self.counts["model_calls"] += 1
            try:
                reply = ctx.adapter.complete(request, on_text=deltas.feed, cancel=ctx.cancel)
            except Cancelled:
                deltas.finish()
                return self._end("cancelled", running="model call")
            except ScriptEnded as ended:
                deltas.finish()
                return self._failed("script_ended", str(ended))
            except ProviderFailure as problem:
                deltas.finish()
                reason = self.redactor.redact(problem.message)
                log.warning("model call failed (%s): %s", problem.code, reason)
                return self._failed(problem.code, reason)
            except Exception as error:  # any provider failure ends the task, reported
                deltas.finish()
                if ctx.cancel.is_set():
                    return self._end("cancelled", running="model call")
                reason = self.redactor.redact(f"{type(error).__name__}: {error}")
                log.warning("model call failed: %s", reason)  # redacted: logs hide values too
                return self._failed("provider_error", reason)
            deltas.finish()
            self.counts["input_tokens"] += reply.input_tokens
            self.counts["output_tokens"] += reply.output_tokens
            text = self.redactor.redact(reply.text)
            if text:
                ctx.emit("message.created", {"text": text, "stop_reason": reply.stop_reason})
            shown = [conv.shown_call(call, self.redactor) for call in reply.tool_calls]
            messages.append(Message(role="assistant", content=text, tool_calls=shown,
                                    replay=reply.replay))
            usage = Usage(reply.input_tokens + reply.output_tokens, len(messages))
            if not reply.tool_calls:
                if reply.stop_reason == "max_tokens":
                    carried += reply.text
                    messages.append(Message(role="user", content=conv.CONTINUE_PROMPT))
                    continue
                return self._end("succeeded", result=carried + reply.text)
            ended = self._tools(reply.tool_calls, shown, messages)
            if ended is not None:
                return ended

    def _tools(self, calls, shown, messages: list[Message]) -> LoopOutcome | None:
        """Run one round of tool calls; an outcome when the task ends during it."""
        ctx = self.ctx
        for call, seen in zip(calls, shown, strict=True):
            if ctx.cancel.is_set():
                return self._end("cancelled")
            ctx.emit("tool.call", {"id": seen.id, "name": seen.name,
                                   "arguments": seen.arguments})
            self.counts["tool_calls"] += 1
            try:
                outcome = run_tool(call, backend=ctx.backend, workspace_id=ctx.workspace_id,
                                   uid=ctx.uid, allowed=ctx.tools, limits=ctx.limits,
                                   env=ctx.env, cancel=ctx.cancel, on_output=None,
                                   redactor=self.redactor)
            except (SandboxError, OSError) as error:
                reason = self.redactor.redact(f"{type(error).__name__}: {error}")
                ctx.emit("tool.result", {"id": seen.id, "name": seen.name, "ok": False,
                                         "output": "", "error": f"sandbox error: {reason}",
                                         "exit_code": None, "duration_seconds": 0.0,
                                         "cpu_seconds": 0.0, "peak_memory_bytes": None,
                                         "limit": None})
                return self._failed("sandbox_error", reason)
            ctx.emit("tool.result", conv.tool_result_event(seen, outcome))
            messages.append(Message(role="tool", content=conv.result_for_model(call.name, outcome),
                                    tool_call_id=call.id, tool_name=call.name))
            if outcome.cancelled or ctx.cancel.is_set():
                return self._end("cancelled", running=describe(seen))
        return None
