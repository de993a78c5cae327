"""The SSE helper every event-stream route uses.

``stream()`` registers with the process's live subscription FIRST, then replays the
stored log after the resume point, then streams live events, dropping any number it
has already sent and re-reading the database when a live number jumps ahead (or the
subscription was re-established), so a client sees each event once, in order.
Database reads are short sessions that end before the next wait: an idle stream holds
no connection.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager

from flask import Response, current_app, request, stream_with_context

from evershell.core.db import BEGIN_OPTION
from evershell.core.errors import validation_error
from evershell.events import live, services
from evershell.extensions import db

HEARTBEAT_SECONDS = 15.0
MAX_SECONDS = 1800.0
RETRY_MS = 3000
REPLAY_BATCH = 500
_NUMBER = re.compile(r"[0-9]{1,18}")


def stream(stream_key: str, *, after: int | None, terminal_types: set[str],
           is_finished: Callable[[], bool] | None, max_seconds: float = MAX_SECONDS,
           heartbeat_seconds: float = HEARTBEAT_SECONDS, retry_ms: int = RETRY_MS) \
        -> Response:
    """An SSE response for ``stream_key``, resuming after ``Last-Event-ID`` (which wins)
    or ``after`` (the route's ``?after=``; None means the whole log).

    Closes after an event whose type is in ``terminal_types`` (also at once when the log
    already ends with one), when ``is_finished()`` says so (asked after the replay, at
    each heartbeat and after each live event, in a short session of its own: query
    there rather than using objects the route loaded), or after ``max_seconds`` with a
    ``retry:`` hint.
    """
    start = resume_point(after)
    subscriber = live.subscriber(current_app._get_current_object())
    frames = _frames(subscriber, stream_key, start, frozenset(terminal_types), is_finished,
                     max_seconds, heartbeat_seconds, retry_ms)
    response = Response(stream_with_context(frames), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache, no-transform"
    response.headers["X-Accel-Buffering"] = "no"  # nginx and friends: do not buffer
    return response


def after_param(value: str | None) -> int | None:
    """``?after=`` as a route reads it: absent or empty is None; else an event number
    (400 ``validation_error`` otherwise)."""
    if value is None or value == "":
        return None
    if not _NUMBER.fullmatch(value):
        raise validation_error({"after": ["An event number (0, 1, 2, …)."]})
    return int(value)


def resume_point(after: int | None) -> int:
    """The number to replay after: ``Last-Event-ID`` when the client sent one, else
    ``after``, else 0."""
    header = request.headers.get("Last-Event-ID", "").strip()
    if header:
        if not _NUMBER.fullmatch(header):
            raise validation_error({"Last-Event-ID": [
                "Must be the id of an event this stream sent (a non-negative integer)."]})
        return int(header)
    return max(after or 0, 0)


def _frames(subscriber: live.Subscriber, stream_key: str, last: int,
            terminal: frozenset[str], is_finished: Callable[[], bool] | None,
            max_seconds: float, heartbeat_seconds: float, retry_ms: int) -> Iterator[bytes]:
    db.session.close()  # the route's transaction is over; hold nothing while streaming
    client = subscriber.register(stream_key)  # before the replay: nothing falls between
    try:
        yield b": open\n\n"
        resumed_at = last
        last, ended = yield from _replay(stream_key, last, terminal)
        if last == resumed_at and not ended and terminal:
            with _short_session() as session:  # resumed after the log's terminal event?
                ended = services.latest(session, stream_key)[1] in terminal
        if ended or _finished(is_finished):
            return
        now = time.monotonic()
        deadline = now + max_seconds
        next_beat = now + heartbeat_seconds
        while True:
            now = time.monotonic()
            if now >= deadline:
                yield f"retry: {retry_ms}\n\n".encode()
                return
            if now >= next_beat:
                if _finished(is_finished):
                    return
                yield b": heartbeat\n\n"
                next_beat = time.monotonic() + heartbeat_seconds
                continue
            items = client.wait(min(next_beat, deadline) - now)
            if not items:
                continue
            out: list[bytes] = []
            before = last
            for item in items:
                if item is live.RESYNC or item.number > last + 1:
                    # Re-subscribed, or a gap: events are published after commit and
                    # numbers commit in order, so all up to this one are stored now.
                    if out:
                        yield b"".join(out)
                        out = []
                    last, ended = yield from _replay(stream_key, last, terminal)
                elif item.number == last + 1:
                    out.append(item.frame)
                    last, ended = item.number, item.type in terminal
                # else: already sent (replayed, or caught up past it)
                if ended:
                    break
            if out:
                yield b"".join(out)
            if ended or (last != before and _finished(is_finished)):
                return
    finally:
        subscriber.unregister(client)


def _replay(stream_key: str, last: int, terminal: frozenset[str]) \
        -> Generator[bytes, None, tuple[int, bool]]:
    """Yield the frames of stored events after ``last``, a batch at a time, stopping
    after a terminal one; return the new last number and whether the stream ended."""
    while True:
        with _short_session() as session:
            rows = [(e.number, e.type, services.encode(e))
                    for e in services.read_after(session, stream_key, last, REPLAY_BATCH)]
        chunk = []
        for number, type, body in rows:
            chunk.append(live.frame(number, type, body))
            last = number
            if type in terminal:
                yield b"".join(chunk)
                return last, True
        if chunk:
            yield b"".join(chunk)
        if len(rows) < REPLAY_BATCH:
            return last, False


def _finished(is_finished: Callable[[], bool] | None) -> bool:
    if is_finished is None:
        return False
    with _short_session():
        return bool(is_finished())


@contextmanager
def _short_session():
    """The request's session for one read, ended (connection returned) straight after.
    Deferred on SQLite whatever the request declared: streaming only reads, and must
    never queue behind, or hold, the write lock."""
    session = db.session()
    session.connection(execution_options={BEGIN_OPTION: "DEFERRED"})
    try:
        yield session
    finally:
        session.close()
