"""Redaction through every path of the loop: a canary secret in the sandbox's env is
never in an emitted event, the result, or anything sent to the model, in any of the
documented encodings."""

from __future__ import annotations

import base64
import dataclasses
from urllib.parse import quote

from evershell.agent import loop
from evershell.agent.adapters import ModelReply, ToolCall
from evershell.sandbox import Limits
from evershell.secrets.redaction import Redactor

CANARY = "cnry/7Qx+9Lm=2Vt8Kp4Zw6"
ENCODED = {
    "plain": CANARY,
    "base64": base64.b64encode(CANARY.encode()).decode(),
    "hex": CANARY.encode().hex(),
    "url": quote(CANARY, safe=""),
    "reversed": CANARY[::-1],
    "char-per-line": "\n".join(CANARY),
    "prefix": CANARY[:6],
    "suffix": CANARY[-6:],
}
URL_QUOTE = ('python3 -c "import os, urllib.parse; '
             'print(urllib.parse.quote(os.environ[\'TOKEN\'], safe=\'\'))"')
COMMANDS = {
    "env": "env",
    "echo": "echo $TOKEN",
    "base64": 'printf %s "$TOKEN" | base64',
    "hex": "printf %s \"$TOKEN\" | od -An -tx1 | tr -d ' \\n'",
    "xxd": 'printf %s "$TOKEN" | xxd -p',
    "url": URL_QUOTE,
    "reversed": 'printf "%s\\n" "$TOKEN" | rev',
    "char-per-line": 'printf %s "$TOKEN" | fold -w1',
    "cut": "head -c 1015 /dev/zero | tr '\\0' x; echo $TOKEN",
}


def strings(value) -> list[str]:
    """Every string inside an event's data or a request."""
    if isinstance(value, str):
        return [value]
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings(k) + strings(v)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in strings(item)]
    return []


def leaks(texts: list[str]) -> list[tuple[str, str]]:
    return [(name, text[:80]) for text in texts for name, form in ENCODED.items()
            if form in text]


def test_a_canary_leaks_through_no_command_event_result_or_request(run_loop):
    calls = [{"name": "shell", "arguments": {"command": command}}
             for command in COMMANDS.values()]
    calls += [
        {"name": "write_file", "arguments": {"path": "note.txt",
                                             "content": f"a\n{CANARY}\nb\n"}},
        {"name": "read_file", "arguments": {"path": "note.txt"}},
        {"name": "shell", "arguments": {"command": 'printf %s "$TOKEN" | fold -w1 > c.txt'}},
        {"name": "read_file", "arguments": {"path": "c.txt", "offset": 5, "limit": 3}},
        {"name": "read_file", "arguments": {"path": f"/data/work/{CANARY}"}},
        {"name": "list_files", "arguments": {}},
    ]
    done = run_loop([{"text": f"Looking at {CANARY} now.", "tool_calls": calls},
                     {"text": f"The token is {CANARY}, or {ENCODED['base64']}."}],
                    env={"TOKEN": CANARY}, redactor=Redactor({"TOKEN": CANARY}),
                    limits=Limits(max_output_bytes=1024))
    assert done.outcome.status == "succeeded", done.outcome
    results = done.of("tool.result")
    by_command = dict(zip(COMMANDS, results, strict=False))
    assert "TOKEN=[secret:TOKEN]" in by_command["env"]["output"]
    for name, result in by_command.items():
        assert result["exit_code"] == 0, (name, result)
        assert "[secret:TOKEN]" in result["output"], (name, result["output"][-200:])
    assert results[len(COMMANDS) + 3]["output"] == "[secret:TOKEN]"  # lines 5-7 of c.txt
    assert done.outcome.result == "The token is [secret:TOKEN], or [secret:TOKEN]."
    assert done.of("tool.call")[len(COMMANDS)]["arguments"]["content"] == (
        "a\n[secret:TOKEN]\nb\n")
    emitted = [s for _, data in done.events for s in strings(data)]
    emitted.append("".join(d["text"] for d in done.of("message.delta")))
    assert leaks(emitted) == []
    assert leaks(strings(done.outcome)) == []
    sent = [s for request in done.adapter.requests for s in strings(request)]
    assert leaks(sent) == []
    assert any("[secret:TOKEN]" in s for s in sent)


class Trickle:
    """A model that streams its answer one character at a time and leaks in a tool
    call's arguments and in an error."""

    def __init__(self, fail: bool = False) -> None:
        self.calls, self.fail = 0, fail

    def complete(self, request, *, on_text, cancel):
        self.calls += 1
        if self.fail:
            raise RuntimeError(f"bad key {CANARY}")
        if self.calls == 1:
            return ModelReply("", [ToolCall("c1", "shell", {"command": f"echo {CANARY}"})],
                              1, 1, "tool_use")
        text = f"start {CANARY} middle {ENCODED['hex']} end"
        for char in text:
            on_text(char)
        return ModelReply(text, [], 1, 1, "end_turn")


def test_a_value_split_across_streamed_deltas_is_caught(run_loop, monkeypatch):
    monkeypatch.setattr(loop, "DELTA_BYTES", 1)  # a delta for whatever is safe to send
    done = run_loop(Trickle(), redactor=Redactor({"TOKEN": CANARY}))
    deltas = [d["text"] for d in done.of("message.delta")]
    assert len(deltas) > 3
    assert not any(CANARY[:4] in d or CANARY[-4:] in d for d in deltas)
    assert "".join(deltas) == "start [secret:TOKEN] middle [secret:TOKEN] end"
    assert done.of("tool.call")[0]["arguments"] == {"command": "echo [secret:TOKEN]"}
    assert done.of("tool.result")[0]["output"] == "[secret:TOKEN]\n"
    assert leaks([s for _, data in done.events for s in strings(data)]) == []
    assert leaks([s for r in done.adapter.requests for s in strings(r)]) == []


def test_errors_and_descriptions_are_redacted_too(run_loop):
    done = run_loop(Trickle(fail=True), redactor=Redactor({"TOKEN": CANARY}),
                    description=f"use {CANARY}", history=[(CANARY, ENCODED["url"])],
                    system_prompt=f"key {CANARY}")
    assert done.outcome.failure_reason == "RuntimeError: bad key [secret:TOKEN]"
    assert leaks([s for r in done.adapter.requests for s in strings(r)]) == []
