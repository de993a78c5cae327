"""Live fan-out: ONE Redis subscription per process, shared by all of its SSE clients.

A daemon thread (a greenlet under gunicorn's gevent worker, which monkey-patches
``threading``) holds a single pattern subscription to every event channel of this
instance and hands each message to the clients registered for its stream. Every
(re)subscription — the first, and each after Redis dropped — tells every registered
client to re-read the database (``RESYNC``), so nothing published while the connection
was down is lost: the database is the log, Redis only the doorbell.

A client whose queue overflows (it stopped reading) gets its queue replaced by one
``RESYNC`` and catches up from the database too.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass

from flask import Flask, current_app

from evershell.events.services import channel_prefix
from evershell.extensions import redis_url

log = logging.getLogger(__name__)

MAX_QUEUED = 1000
READY_WAIT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class LiveEvent:
    number: int
    type: str
    frame: bytes  # the SSE frame, built once for every client of the stream


def frame(number: int, type: str, body: str) -> bytes:
    """One SSE frame; ``body`` is ``services.encode(event)`` (a single line of JSON)."""
    return f"id: {number}\nevent: {type}\ndata: {body}\n\n".encode()


RESYNC = object()  # "re-read the database after your last number"


class Client:
    """One SSE connection's inbox."""

    __slots__ = ("stream_key", "_items", "_wakeup")

    def __init__(self, stream_key: str):
        self.stream_key = stream_key
        self._items: deque = deque()
        self._wakeup = threading.Event()

    def deliver(self, item) -> None:
        if len(self._items) >= MAX_QUEUED:
            self._items.clear()
            item = RESYNC
        self._items.append(item)
        self._wakeup.set()

    def wait(self, timeout: float) -> list:
        """What arrived, waiting up to ``timeout`` seconds; [] when nothing did."""
        deadline = time.monotonic() + timeout
        while not self._items:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            self._wakeup.wait(remaining)
            self._wakeup.clear()
        items = []
        while self._items:
            items.append(self._items.popleft())
        return items


class Subscriber:
    """The process's subscription and its registry of clients by stream."""

    def __init__(self, url: str, reconnect_seconds: float = 1.0):
        self.url = url
        self.reconnect_seconds = reconnect_seconds
        self._clients: dict[str, set[Client]] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._pubsub = None
        self._closed = False

    def register(self, stream_key: str) -> Client:
        """A new client of ``stream_key``, receiving every event published from now on
        (once this returns with the subscription live; else it gets a ``RESYNC`` when the
        subscription comes up)."""
        client = Client(stream_key)
        with self._lock:
            self._clients.setdefault(stream_key, set()).add(client)
            self._ensure_running()
        self._ready.wait(READY_WAIT_SECONDS)
        return client

    def unregister(self, client: Client) -> None:
        with self._lock:
            clients = self._clients.get(client.stream_key)
            if clients is not None:
                clients.discard(client)
                if not clients:
                    del self._clients[client.stream_key]

    def client_count(self) -> int:
        with self._lock:
            return sum(len(clients) for clients in self._clients.values())

    def _ensure_running(self) -> None:
        # A forked child inherits the object but not the thread: start its own.
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._pid = os.getpid()
            self._ready.clear()
            self._thread = threading.Thread(target=self._run, name="evershell-events",
                                            daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the subscription for good (a process that no longer serves streams)."""
        self._closed = True
        pubsub = self._pubsub
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception:  # noqa: BLE001 - closing a dead connection: nothing to do
                log.debug("closing the event subscription failed", exc_info=True)

    def _run(self) -> None:
        import redis

        while not self._closed:
            try:
                self._listen(redis)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                log.warning("event subscription lost (%s); reconnecting in %.1fs",
                            exc, self.reconnect_seconds)
            except Exception:
                if self._closed:
                    return
                log.exception("event subscription failed; reconnecting")
            self._ready.clear()
            if self._closed:
                return
            time.sleep(self.reconnect_seconds)

    def _listen(self, redis) -> None:
        # TCP keepalive finds a dead peer behind a silent network; a unix socket (the
        # embedded Redis) has no such option and refuses it.
        tcp = {} if self.url.startswith("unix:") else {"socket_keepalive": True}
        client = redis.Redis.from_url(
            self.url, client_name=f"evershell-events:{os.getpid()}",
            health_check_interval=30, socket_connect_timeout=5, **tcp)
        prefix = channel_prefix(client)
        pubsub = client.pubsub()
        self._pubsub = pubsub
        try:
            pubsub.psubscribe(prefix + "*")
            while True:
                message = pubsub.get_message(timeout=10)
                if message is None:
                    continue
                if message["type"] == "psubscribe":
                    # (Re)subscribed — also after redis-py reconnected by itself.
                    self._ready.set()
                    self._broadcast(RESYNC)
                elif message["type"] == "pmessage":
                    self._dispatch(message["channel"][len(prefix):].decode(),
                                   message["data"])
        finally:
            self._pubsub = None
            pubsub.close()
            client.close()

    def _dispatch(self, stream_key: str, data: bytes) -> None:
        with self._lock:
            clients = list(self._clients.get(stream_key, ()))
        if not clients:
            return
        body = data.decode()
        payload = json.loads(body)
        number, type = int(payload["id"]), str(payload["type"])
        item = LiveEvent(number, type, frame(number, type, body))
        for client in clients:
            client.deliver(item)

    def _broadcast(self, item) -> None:
        with self._lock:
            clients = [c for group in self._clients.values() for c in group]
        for client in clients:
            client.deliver(item)


_subscribers: dict[str, Subscriber] = {}
_subscribers_lock = threading.Lock()


def subscriber(app: Flask | None = None) -> Subscriber:
    """This process's subscriber for the app's Redis."""
    app = app or current_app._get_current_object()
    url = app.extensions.get("evershell-events-url")
    if url is None:
        url = app.extensions["evershell-events-url"] = redis_url(app)
    with _subscribers_lock:
        found = _subscribers.get(url)
        if found is None:
            found = _subscribers[url] = Subscriber(url)
        return found
