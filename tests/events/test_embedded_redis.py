"""The live subscription works on the embedded default too: a Redis on a unix socket
(which refuses TCP-only socket options)."""

from __future__ import annotations

import time

import redis

from evershell.core import embedded_redis
from evershell.events import live
from evershell.events.services import channel_prefix


def test_events_reach_a_subscriber_over_a_unix_socket(tmp_path):
    child = embedded_redis.ensure_running(tmp_path, daemonize=False)
    try:
        url = embedded_redis.url_for(tmp_path)
        subscriber = live.Subscriber(url)
        client = subscriber.register("workspace:ws_demo")
        publisher = redis.Redis.from_url(url)
        received = []
        deadline = time.monotonic() + 15  # the first subscription may be a moment late
        while time.monotonic() < deadline and not received:
            publisher.publish(channel_prefix(publisher) + "workspace:ws_demo",
                              '{"id": 1, "type": "workspace.status"}')
            received = [i for i in client.wait(0.5) if i is not live.RESYNC]
        assert received
        subscriber.unregister(client)
        subscriber.close()
    finally:
        if child is not None:
            child.terminate()
            child.wait(10)
