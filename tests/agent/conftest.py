"""Fixtures for the agent tests: the sandbox tests' live workspace on real bubblewrap
(a world-searchable scratch root, host uids checked for leftovers), and a helper that
runs the loop with a scripted (or any) adapter, recording every event and every request
the adapter received."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field

import pytest

from evershell.agent.adapters import ModelAdapter, ScriptedAdapter
from evershell.agent.loop import LoopContext, LoopOutcome, run
from evershell.sandbox import Limits
from evershell.secrets.redaction import Redactor
from tests.sandbox.conftest import backend, processes_of, uid, workspace  # noqa: F401

ALL_TOOLS = {"shell", "read_file", "write_file", "list_files"}


class Recording:
    """Wraps an adapter (or a test's model, which need only have ``complete``) as a
    whole ``ModelAdapter``; keeps a deep copy of every request it was sent."""

    def __init__(self, inner: ModelAdapter) -> None:
        self.inner, self.requests, self.closed = inner, [], 0

    def complete(self, request, *, on_text, cancel):
        self.requests.append(copy.deepcopy(request))
        return self.inner.complete(request, on_text=on_text, cancel=cancel)

    def notes(self, thinking_effort: str) -> list[str]:
        return self.inner.notes(thinking_effort) if hasattr(self.inner, "notes") else []

    def extra_output_tokens(self, thinking_effort: str) -> int:
        extra = getattr(self.inner, "extra_output_tokens", None)
        return extra(thinking_effort) if extra is not None else 0

    def close(self) -> None:
        self.closed += 1
        if hasattr(self.inner, "close"):
            self.inner.close()


@dataclass
class Run:
    """One loop run: its outcome, the events it emitted, the requests the model got."""

    outcome: LoopOutcome | None = None
    events: list[tuple[str, dict]] = field(default_factory=list)
    adapter: Recording | None = None

    def types(self) -> list[str]:
        return [kind for kind, _ in self.events]

    def of(self, kind: str) -> list[dict]:
        return [data for k, data in self.events if k == kind]


@pytest.fixture
def make_context(backend, workspace, uid):  # noqa: F811
    """``make_context(script_or_adapter, **overrides)`` → (LoopContext, Run)."""

    def make(script, **overrides) -> tuple[LoopContext, Run]:
        record = Run()
        inner = ScriptedAdapter(script) if isinstance(script, list) else script
        record.adapter = Recording(inner)
        values = dict(
            system_prompt="You are a careful engineer.", history=[], pack_listing=[],
            description="Do the thing.", uploads=[], tools=set(ALL_TOOLS),
            limits=Limits(wall_seconds=30, max_output_bytes=4096), env={},
            redactor=Redactor({}), adapter=record.adapter, backend=backend,
            workspace_id=workspace, uid=uid, max_continuations=10,
            max_context_tokens=50_000, thinking_effort="medium",
            emit=lambda kind, data: record.events.append((kind, copy.deepcopy(data))),
            cancel=threading.Event())
        values.update(overrides)
        return LoopContext(**values), record

    return make


@pytest.fixture
def run_loop(make_context):
    """``run_loop(script_or_adapter, **overrides)`` → a finished :class:`Run`."""

    def go(script, **overrides) -> Run:
        context, record = make_context(script, **overrides)
        record.outcome = run(context)
        return record

    return go
