"""The context budget: old tool outputs masked first, then the oldest turns dropped;
the system prompt, the description and the newest turn kept; no orphaned tool result."""

from __future__ import annotations

from evershell.agent.adapters import Message, ToolCall
from evershell.agent.budget import (
    MASKED,
    Usage,
    conversation_tokens,
    estimate_tokens,
    fit,
)

SYSTEM = "system prompt " * 10


def conversation(rounds: int = 3, output: int = 4000) -> list[Message]:
    """Two earlier tasks, the description, then ``rounds`` assistant turns with two tool
    calls each, every result ``output`` characters."""
    messages = [Message("user", "old task one"), Message("assistant", "old result one"),
                Message("user", "old task two"), Message("assistant", "old result two"),
                Message("user", "THE TASK")]
    for turn in range(rounds):
        calls = [ToolCall(f"c{turn}a", "shell", {"command": "ls"}),
                 ToolCall(f"c{turn}b", "read_file", {"path": "x"})]
        messages.append(Message("assistant", f"turn {turn}", calls))
        messages += [Message("tool", str(turn) * output, tool_call_id=c.id, tool_name=c.name)
                     for c in calls]
    return messages


def orphans(messages: list[Message]) -> list[str]:
    seen: set[str] = set()
    missing = []
    for message in messages:
        seen |= {call.id for call in message.tool_calls}
        if message.role == "tool" and message.tool_call_id not in seen:
            missing.append(message.tool_call_id)
    answered = {m.tool_call_id for m in messages if m.role == "tool"}
    missing += [c.id for m in messages for c in m.tool_calls if c.id not in answered]
    return missing


def test_the_estimate_is_about_four_characters_a_token():
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd" * 10) == 10
    assert estimate_tokens("abcde") == 2


def test_a_conversation_within_budget_is_untouched():
    messages = conversation()
    assert fit(messages, SYSTEM, 100_000, pinned=4) == messages


def test_old_tool_outputs_are_masked_first_oldest_first():
    messages = conversation()
    total = conversation_tokens(messages, SYSTEM)
    out = fit(messages, SYSTEM, total - 1500, pinned=4)
    assert len(out) == len(messages)  # nothing dropped yet
    contents = [m.content for m in out if m.role == "tool"]
    assert contents[0].startswith(MASKED[:20]) and contents[1].startswith(MASKED[:20])
    assert contents[2:] == ["1" * 4000, "1" * 4000, "2" * 4000, "2" * 4000]
    assert messages[6].content == "0" * 4000  # the input is not changed
    assert orphans(out) == []


def test_then_the_oldest_turns_are_dropped_earlier_tasks_first():
    messages = conversation(rounds=4)
    masked_total = conversation_tokens(fit(messages, SYSTEM, 3000, pinned=4), SYSTEM)
    seen_history_gone_turns_kept = False
    for budget in range(masked_total - 1, 2000, -3):
        out = fit(messages, SYSTEM, budget, pinned=4)
        kept = [m.content for m in out if m.role in ("user", "assistant")]
        history = [c for c in kept if c.startswith("old")]
        turns = [c for c in kept if c.startswith("turn")]
        assert "THE TASK" in kept and "turn 3" in kept and out[-1].content == "3" * 4000
        assert turns == [f"turn {k}" for k in range(4 - len(turns), 4)]  # oldest go first
        if len(turns) < 4:
            assert history == []  # earlier tasks went before any turn of this one
        assert history in (["old task one", "old result one", "old task two",
                            "old result two"], ["old task two", "old result two"], [])
        seen_history_gone_turns_kept |= history == [] and len(turns) == 4
        assert orphans(out) == []
        assert conversation_tokens(out, SYSTEM) <= budget or len(out) == 4
    assert seen_history_gone_turns_kept
    assert len(fit(messages, SYSTEM, 2000, pinned=4)) == 4


def test_earlier_tasks_go_oldest_first_when_that_is_enough():
    messages = conversation(rounds=1, output=10)
    messages[1].content = "x" * 2000
    total = conversation_tokens(messages, SYSTEM)
    out = fit(messages, SYSTEM, total - 100, pinned=4)
    assert [m.content for m in out][:3] == ["old task two", "old result two", "THE TASK"]


def test_a_budget_too_small_for_everything_keeps_the_task_and_the_newest_turn():
    out = fit(conversation(rounds=3), SYSTEM, 10, pinned=4)
    assert [m.content[:8] for m in out] == ["THE TASK", "turn 2", "2" * 8, "2" * 8]
    assert orphans(out) == []


def test_provider_reported_usage_calibrates_the_estimate():
    messages = conversation(rounds=2, output=1000)
    estimate = conversation_tokens(messages, SYSTEM)
    budget = 2 * estimate - 100
    assert fit(messages, SYSTEM, budget, pinned=4) == messages
    # The provider counted twice as many tokens: the same budget is now too small.
    reported = Usage(tokens=2 * estimate, messages=len(messages))
    assert conversation_tokens(messages, SYSTEM, reported) == 2 * estimate
    out = fit(messages, SYSTEM, budget, reported, pinned=4)
    assert len(out) == len(messages)
    assert out[6].content.startswith(MASKED[:20]) and out[-1].content == "1" * 1000
