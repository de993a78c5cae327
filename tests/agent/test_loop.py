"""The agent loop end to end on real bubblewrap with the scripted adapter."""

from __future__ import annotations

import threading
import time

import pytest

from evershell.agent.adapters import (
    ModelReply,
    ScriptedAdapter,
    adapter_for,
)
from evershell.agent.budget import MASKED
from evershell.agent.conversation import CONTINUE_PROMPT
from evershell.agent.loop import run
from evershell.sandbox import Limits
from tests.agent.conftest import processes_of

PROGRAM = "import sys\nlines = open(sys.argv[1]).read().split()\nprint(len(lines), 'words')\n"


def test_a_script_writes_a_program_runs_it_reads_its_output_and_answers(run_loop, backend,
                                                                         workspace):
    backend.write_file(workspace, backend_uid(backend, workspace), "/data/uploads/t1/in.txt",
                       b"one two three\nfour\n")
    script = [
        {"text": "I'll write a word counter.", "tool_calls": [
            {"name": "write_file", "arguments": {"path": "count.py", "content": PROGRAM}}]},
        {"tool_calls": [{"name": "shell", "arguments": {
            "command": "python3 count.py /data/uploads/t1/in.txt > out.txt; echo done"}}]},
        {"tool_calls": [{"name": "read_file", "arguments": {"path": "/data/work/out.txt"}},
                        {"name": "list_files", "arguments": {}}]},
        {"text": "The file has 4 words."},
    ]
    done = run_loop(script, uploads=["/data/uploads/t1/in.txt"])
    assert done.outcome.status == "succeeded", done.outcome
    assert done.outcome.result == "The file has 4 words."
    assert (done.outcome.model_calls, done.outcome.tool_calls) == (4, 4)
    assert done.outcome.input_tokens > 0 and done.outcome.output_tokens > 0
    assert done.types() == [
        "message.delta", "message.created", "tool.call", "tool.result",
        "tool.call", "tool.result",
        "tool.call", "tool.result", "tool.call", "tool.result",
        "message.delta", "message.created"]
    assert done.of("message.delta")[0]["text"] == "I'll write a word counter."
    calls, results = done.of("tool.call"), done.of("tool.result")
    assert calls[0] == {"id": "call_1_1", "name": "write_file",
                        "arguments": {"path": "count.py", "content": PROGRAM}}
    assert [r["id"] for r in results] == [c["id"] for c in calls]
    shell = results[1]
    assert shell["ok"] and shell["exit_code"] == 0 and shell["output"] == "done\n"
    assert shell["duration_seconds"] > 0 and shell["limit"] is None
    assert set(shell) == {"id", "name", "ok", "output", "error", "exit_code",
                          "duration_seconds", "cpu_seconds", "peak_memory_bytes", "limit"}
    assert results[2]["output"] == "4 words\n"
    assert "/data/work/count.py" in results[3]["output"]
    # What the model was sent: the description with its uploads, then each round's results.
    first, last = done.adapter.requests[0], done.adapter.requests[-1]
    assert first.messages[0].content.endswith("Files uploaded with this task:\n"
                                              "- /data/uploads/t1/in.txt")
    assert [t["name"] for t in first.tools] == ["shell", "read_file", "write_file",
                                                "list_files"]
    assert first.system.startswith("You are a careful engineer.")
    tool_messages = [m for m in last.messages if m.role == "tool"]
    assert [m.tool_call_id for m in tool_messages] == [c["id"] for c in calls]
    assert tool_messages[1].content == "done\n\n[exit code: 0]"


def backend_uid(backend, workspace) -> int:
    return backend.live_path(workspace).joinpath("work").stat().st_uid


def test_earlier_tasks_come_before_the_description_as_pairs(run_loop):
    done = run_loop([{"text": "ok"}], history=[("first task", "first result"),
                                                ("second task", "second result")])
    sent = done.adapter.requests[0].messages
    assert [(m.role, m.content) for m in sent] == [
        ("user", "first task"), ("assistant", "first result"),
        ("user", "second task"), ("assistant", "second result"), ("user", "Do the thing.")]


def test_invalid_arguments_are_a_tool_error_and_the_loop_goes_on(run_loop):
    done = run_loop([
        {"tool_calls": [{"name": "shell", "arguments": {"cmd": "ls"}},
                        {"name": "read_file", "arguments": {"path": 5, "offset": True}},
                        {"name": "shell", "arguments": {"__invalid__": '{"command": "ls'}}]},
        {"text": "Sorry."}])
    assert done.outcome.status == "succeeded"
    errors = [r["error"] for r in done.of("tool.result")]
    assert errors[0] == ("invalid arguments for shell: 'command' is required; unknown "
                         "argument 'cmd' (expected: command, timeout_seconds)")
    assert errors[1] == ("invalid arguments for read_file: 'path' must be a string; "
                         "'offset' must be an integer")
    assert errors[2].startswith("the arguments are not valid JSON")
    assert not any(r["ok"] for r in done.of("tool.result"))
    sent = [m.content for m in done.adapter.requests[1].messages if m.role == "tool"]
    assert sent[0] == "error: " + errors[0]


def test_a_tool_the_role_does_not_allow_is_refused(run_loop):
    done = run_loop([{"tool_calls": [{"name": "shell", "arguments": {"command": "id"}},
                                     {"name": "browse", "arguments": {}}]},
                     {"text": "fine"}], tools={"read_file"})
    errors = [r["error"] for r in done.of("tool.result")]
    assert errors == ["the role does not allow the tool 'shell' (allowed: read_file)",
                      "unknown tool 'browse'; the tools are: shell, read_file, write_file, "
                      "list_files"]
    assert [t["name"] for t in done.adapter.requests[0].tools] == ["read_file"]
    assert done.outcome.status == "succeeded"


def test_paths_outside_data_and_writes_to_packs_are_tool_errors(run_loop):
    done = run_loop([{"tool_calls": [
        {"name": "read_file", "arguments": {"path": "/etc/passwd"}},
        {"name": "list_files", "arguments": {"path": "../../etc"}},
        {"name": "write_file", "arguments": {"path": "/tmp/x", "content": "x"}},
        {"name": "write_file", "arguments": {"path": "/data/packs/x.txt", "content": "x"}},
        {"name": "read_file", "arguments": {"path": "missing.txt"}}]},
        {"text": "done"}])
    assert done.outcome.status == "succeeded"
    errors = [r["error"] for r in done.of("tool.result")]
    assert "outside /data" in errors[0] and "outside /data" in errors[1]
    assert "outside /data" in errors[2]
    assert errors[3] == "/data/packs is read-only"
    assert errors[4] is not None


def test_max_continuations_ends_the_task(run_loop):
    step = {"tool_calls": [{"name": "list_files", "arguments": {}}]}
    done = run_loop([step] * 5, max_continuations=3)
    assert done.outcome.status == "failed"
    assert done.outcome.failure_code == "max_continuations_reached"
    assert done.outcome.model_calls == 3 and done.outcome.tool_calls == 3


def test_a_script_that_runs_out_after_a_tool_round_fails_the_task(run_loop):
    done = run_loop([{"tool_calls": [{"name": "list_files", "arguments": {}}]}])
    assert done.outcome.status == "failed"
    assert done.outcome.failure_code == "script_ended"
    assert done.outcome.failure_reason == ("the script has 1 steps and the task asked for "
                                           "step 2")
    assert done.outcome.model_calls == 2


class CutOff:
    """A model whose first reply hits the output limit."""

    def __init__(self) -> None:
        self.replies = [ModelReply("The answer is ", [], 5, 4, "max_tokens"),
                        ModelReply("forty-two.", [], 9, 3, "end_turn")]

    def complete(self, request, *, on_text, cancel):
        reply = self.replies.pop(0)
        on_text(reply.text)
        return reply


def test_a_reply_cut_off_by_the_output_limit_is_continued_and_counted(run_loop):
    done = run_loop(CutOff())
    assert done.outcome.status == "succeeded"
    assert done.outcome.result == "The answer is forty-two."
    assert done.adapter.closed == 1
    assert (done.outcome.model_calls, done.outcome.input_tokens) == (2, 14)
    assert done.adapter.requests[1].messages[-1].content == CONTINUE_PROMPT


def test_a_cut_off_reply_at_the_last_model_call_fails_the_task(run_loop):
    done = run_loop(CutOff(), max_continuations=1)
    assert done.outcome.failure_code == "max_continuations_reached"


class Broken:
    def complete(self, request, *, on_text, cancel):
        raise ConnectionError("upstream said no")


def test_a_provider_error_fails_the_task(run_loop):
    done = run_loop(Broken())
    assert (done.outcome.status, done.outcome.failure_code) == ("failed", "provider_error")
    assert done.outcome.failure_reason == "ConnectionError: upstream said no"
    assert done.adapter.closed == 1  # the loop releases the adapter however it ends


def test_adapter_for_gives_each_kind_its_adapter():
    from evershell.agent.anthropic_messages import AnthropicAdapter
    from evershell.agent.openai_chat import OpenAIAdapter
    assert isinstance(adapter_for("scripted", script=[{"text": "hi"}]), ScriptedAdapter)
    assert isinstance(adapter_for("anthropic", model="claude-sonnet-4-5",
                                  base_url="https://api.anthropic.com", api_key="k"),
                      AnthropicAdapter)
    compatible = adapter_for("openai_compatible", model="m", base_url="http://x/v1")
    assert isinstance(compatible, OpenAIAdapter) and compatible.compatible
    with pytest.raises(ValueError, match="unknown provider kind"):
        adapter_for("bard")
    with pytest.raises(ValueError):
        ScriptedAdapter([])


def test_shell_timeouts_are_capped_by_wall_seconds_and_output_is_cut(run_loop):
    done = run_loop([{"tool_calls": [
        {"name": "shell", "arguments": {"command": "sleep 30", "timeout_seconds": 1000}},
        {"name": "shell", "arguments": {"command": "sleep 30", "timeout_seconds": 1}},
        {"name": "shell", "arguments": {"command": "head -c 3000 /dev/zero | tr '\\0' a"}}]},
        {"text": "ok"}], limits=Limits(wall_seconds=1, max_output_bytes=1024))
    capped, timed_out, long = done.of("tool.result")
    assert capped["limit"] == "wall" and capped["duration_seconds"] < 5 and not capped["ok"]
    assert timed_out["limit"] == "wall"
    assert long["output"].startswith("a" * 1024) and "[output truncated" in long["output"]
    assert long["limit"] == "output" and long["ok"]
    sent = [m.content for m in done.adapter.requests[1].messages if m.role == "tool"]
    assert sent[0].endswith("[stopped by the wall limit]")


def test_cancel_kills_the_running_command_at_once(make_context, uid):
    context, record = make_context([{"tool_calls": [
        {"name": "shell", "arguments": {"command": "sleep 600"}}]}, {"text": "never"}])
    outcomes = []
    worker = threading.Thread(target=lambda: outcomes.append(run(context)))
    worker.start()
    deadline = time.monotonic() + 20
    while not processes_of(uid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert processes_of(uid), "the command never started"
    cancelled_at = time.monotonic()
    context.cancel.set()
    worker.join(10)
    assert not worker.is_alive()
    assert time.monotonic() - cancelled_at < 2
    outcome = outcomes[0]
    assert outcome.status == "cancelled" and outcome.running == "shell: sleep 600"
    assert record.types()[-2:] == ["tool.call", "tool.result"]
    assert record.of("tool.result")[0]["error"] == "cancelled"
    assert processes_of(uid) == []


def test_the_budget_masks_old_tool_outputs_in_what_the_model_is_sent(run_loop):
    big = {"name": "shell", "arguments": {"command": "head -c 3000 /dev/zero | tr '\\0' b"}}
    done = run_loop([{"tool_calls": [big]}] * 4 + [{"text": "ok"}],
                    max_context_tokens=4000, limits=Limits(max_output_bytes=4096))
    assert done.outcome.status == "succeeded"
    last = [m.content for m in done.adapter.requests[-1].messages if m.role == "tool"]
    assert last[0].startswith(MASKED[:20])
    assert last[-1].startswith("b" * 3000)
    for request in done.adapter.requests:
        ids = {c.id for m in request.messages for c in m.tool_calls}
        assert all(m.tool_call_id in ids for m in request.messages if m.role == "tool")



def test_the_system_prompt_lists_the_packs(run_loop):
    done = run_loop([{"text": "ok"}], pack_listing=["/data/packs/style/", "docs"])
    system = done.adapter.requests[0].system
    assert system.startswith("You are a careful engineer.\n\n")
    assert system.endswith("Packs mounted read-only:\n- /data/packs/style/\n"
                           "- /data/packs/docs/")
