"""The real application plus one test-only route that streams any event stream through
``evershell.events.sse`` (gunicorn serves it as ``tests.events.sse_app:app``).

Query parameters: ``after``, ``terminal`` (comma-separated types), ``org`` (the stream
ends once that org no longer exists: the ``is_finished`` check, a database read),
``heartbeat`` and ``max_seconds``.
"""

from __future__ import annotations

import os

from flask import Blueprint, jsonify, request

from evershell import create_app
from evershell.events import live, sse
from evershell.extensions import db
from evershell.orgs.models import Org

app = create_app()
blp = Blueprint("test_events", __name__)


@blp.get("/test/events/<path:stream_key>")
def events(stream_key: str):
    org_id = request.args.get("org")
    terminal = {t for t in request.args.get("terminal", "").split(",") if t}
    return sse.stream(
        stream_key, after=request.args.get("after", type=int), terminal_types=terminal,
        is_finished=(lambda: db.session.get(Org, org_id) is None) if org_id else None,
        heartbeat_seconds=request.args.get("heartbeat", 15.0, type=float),
        max_seconds=request.args.get("max_seconds", 1800.0, type=float))


@blp.get("/test/live")
def live_state():
    return jsonify(pid=os.getpid(), clients=live.subscriber().client_count())


app.register_blueprint(blp)
