"""The context budget: keep a conversation under ``max_context_tokens``.

No tokenizer is downloaded. :func:`estimate_tokens` counts about four characters per
token (English prose and code both land near 3.5-4.5 for current models), rounded up,
plus a small overhead per message. When the provider has reported how many tokens a
request really took, :func:`fit` scales the estimate by reported/estimated (bounded to
0.5-4x), so the heuristic is calibrated by the provider's own count.

When a conversation is over budget, :func:`fit` first masks old tool outputs (oldest
first, never the newest round of results), then drops the oldest turns: earlier tasks'
description/result pairs first, then the oldest assistant turns of this task, each with
all of its tool results. The system prompt, the task's description and the newest turn
always stay, and a tool result never loses the call it answers.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evershell.agent.adapters import Message

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4
MASKED = "[tool output omitted to fit the context budget: it was {size} characters]"


@dataclass(frozen=True)
class Usage:
    """What the provider reported for the last call: ``tokens`` (input plus output)
    covering the first ``messages`` messages of the conversation (the reply included)."""

    tokens: int
    messages: int


def estimate_tokens(text: str) -> int:
    """About how many tokens ``text`` is: one per four characters, rounded up."""
    return -(-len(text) // CHARS_PER_TOKEN)


def message_tokens(message: Message) -> int:
    """The estimate for one message: its text, its tool calls and an overhead."""
    calls = sum(estimate_tokens(call.name + json.dumps(call.arguments, sort_keys=True))
                for call in message.tool_calls)
    return estimate_tokens(message.content) + calls + MESSAGE_OVERHEAD_TOKENS


def conversation_tokens(messages: list[Message], system: str,
                        reported_usage: Usage | None = None) -> int:
    """The estimate for a whole request, calibrated by ``reported_usage`` if given."""
    raw = estimate_tokens(system) + sum(message_tokens(m) for m in messages)
    return round(raw * _scale(messages, system, reported_usage))


def _scale(messages: list[Message], system: str, reported: Usage | None) -> float:
    if reported is None or reported.tokens <= 0 or reported.messages > len(messages):
        return 1.0
    counted = estimate_tokens(system) + sum(
        message_tokens(m) for m in messages[:reported.messages])
    return min(4.0, max(0.5, reported.tokens / max(1, counted)))


def _turns(messages: list[Message], pinned: int) -> list[range]:
    """Droppable units, oldest first: before the pinned description, each user message
    with what follows it; after it, each assistant message with its tool results (and
    any continuation prompt). The newest turn is never offered."""
    units: list[range] = []
    for lo, hi, opener in ((0, pinned, "user"), (pinned + 1, len(messages), "assistant")):
        start = None
        for index in range(lo, hi):
            if messages[index].role == opener:
                if start is not None:
                    units.append(range(start, index))
                start = index
        if start is not None:
            units.append(range(start, hi))
    if units and units[-1].stop == len(messages) and units[-1].start > pinned:
        units.pop()  # the newest turn: the model needs it to go on
    return units


def fit(messages: list[Message], system: str, budget: int,
        reported_usage: Usage | None = None, *, pinned: int = 0) -> list[Message]:
    """``messages`` made to fit ``budget`` tokens (a new list; the input is not changed).

    ``pinned`` is the index of the task's description (messages before it are earlier
    tasks' description/result pairs).
    """
    scale = _scale(messages, system, reported_usage)
    sizes = [message_tokens(m) for m in messages]
    total = (estimate_tokens(system) + sum(sizes)) * scale
    if total <= budget:
        return list(messages)
    out = list(messages)
    last_assistant = max((i for i, m in enumerate(out) if m.role == "assistant"), default=-1)
    for index, message in enumerate(out):
        if total <= budget:
            return out
        if (message.role == "tool" and index < last_assistant
                and not message.content.startswith(MASKED[:20])):
            out[index] = dataclasses.replace(
                message, content=MASKED.format(size=len(message.content)))
            new_size = message_tokens(out[index])
            total -= (sizes[index] - new_size) * scale
            sizes[index] = new_size
    dropped: set[int] = set()
    for unit in _turns(out, pinned):
        if total <= budget:
            break
        dropped.update(unit)
        total -= sum(sizes[i] for i in unit) * scale
    return [m for i, m in enumerate(out) if i not in dropped]
