"""Fixtures for event-stream tests that need committed data: a sibling database of
their own, an app on it, and a live gunicorn (gevent) server streaming from it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests

from tests.support.databases import migrated_sibling_app
from tests.support.processes import evershell_env, gunicorn


@pytest.fixture(scope="module")
def live_db(app_config, tmp_path_factory) -> Iterator[tuple]:
    """(app, url) on an empty, migrated database whose commits are real."""
    with migrated_sibling_app(app_config, "events", tmp_path_factory.mktemp("events-db")) \
            as made:
        yield made


@pytest.fixture(scope="module")
def server(live_db, redis_url, tmp_path_factory) -> Iterator[str]:
    """One gevent worker serving ``tests.events.sse_app``; its base URL. (A stream whose
    client left is noticed at its next write, so shutdown does not wait for them.)"""
    _app, url = live_db
    env = evershell_env(
        DATABASE_URL=url, REDIS_URL=redis_url,
        EVERSHELL_INSTANCE_DIR=str(tmp_path_factory.mktemp("events-instance")),
        SECRET_KEY="events-secret")
    log = tmp_path_factory.mktemp("events-log") / "web.log"
    with gunicorn(env, app="tests.events.sse_app:app", log=log,
                  extra=("--graceful-timeout", "2")) as base:
        yield base


@dataclass
class Frame:
    id: int | None = None
    event: str | None = None
    data: str | None = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)


class SSEReader:
    """A streaming SSE client over real HTTP: ``next_frame()`` blocks for the next
    frame; None once the server closed the stream."""

    def __init__(self, url: str, last_event_id: int | None = None, timeout: float = 10):
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.response = requests.get(url, headers=headers, stream=True, timeout=timeout)
        self.response.raise_for_status()
        self._chunks = self.response.iter_content(chunk_size=None)
        self._buffer = b""

    def next_frame(self) -> Frame | None:
        while b"\n\n" not in self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return None
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\n\n", 1)
        frame = Frame()
        for line in raw.decode().split("\n"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "":
                frame.comments.append(value)
            elif name == "id":
                frame.id = int(value)
            elif name == "event":
                frame.event = value
            elif name == "data":
                frame.data = value
            elif name == "retry":
                frame.retry = int(value)
        return frame

    def next_event(self) -> Frame | None:
        """The next frame carrying an event (comments skipped); None at the end."""
        while (frame := self.next_frame()) is not None:
            if frame.id is not None:
                return frame
        return None

    def close(self) -> None:
        self.response.close()
