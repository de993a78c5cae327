"""Console: the task-first path of seed 001. "New task" on the home page (this module
takes the form), a task's page with its live transcript, Cancel and a follow-up box.

The transcript is rendered on the server from the stored log; the page's SSE route
(``live``) re-renders it, with the status, usage and buttons, after every event of the
task's stream, as fragments that replace their elements by id (``hx-swap-oob``): a
reconnect shows the current state again and nothing twice. The stream ends with the
task, and its last frame removes the connection so the browser does not reconnect.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    get_template_attribute,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from evershell.access.principal import Principal, current_principal
from evershell.access.routes import Billing, all_of, any_of
from evershell.access.scopes import Scope
from evershell.access.web import console_page
from evershell.core.db import BEGIN_OPTION
from evershell.core.errors import ErrorCode, EvershellError
from evershell.core.pagination import MAX_LIMIT
from evershell.events import live
from evershell.extensions import db
from evershell.roles import services as roles
from evershell.tasks import services
from evershell.tasks.models import TERMINAL, Task

blp = Blueprint("tasks_views", __name__, url_prefix="/tasks")
S = Scope
READ = S.TASKS_READ_OWN  # org-wide scopes imply the :own ones
SUBMIT = all_of(any_of(S.WORKSPACE_WRITE_OWN), any_of(S.TASKS_WRITE_OWN))
FIELDS = ("role_id", "description", "thinking_effort", "max_continuations",
          "max_context_tokens")
NEXT_FIELDS = FIELDS[1:]
HEARTBEAT_SECONDS = 15.0
MAX_SECONDS = 1800.0
RETRY_MS = 3000
WORKSPACE_TASKS = 50


# -- the form ----------------------------------------------------------------------------

def form_context(principal: Principal) -> dict:
    """What the "New task" form needs: the active roles with their defaults (nothing
    when the caller cannot submit, so the form is not offered)."""
    if not services.can_submit(principal):
        return {"task_roles": [], "can_submit": False}
    return {"task_roles": roles.list_roles(principal, MAX_LIMIT, None)["data"],
            "can_submit": True}


def _given(names: tuple[str, ...]) -> tuple[dict, list]:
    """The form's fields (empty ones left out, numbers as numbers) and its files."""
    given: dict = {}
    problems: dict[str, list[str]] = {}
    for name in names:
        value = (request.form.get(name) or "").strip()
        if not value:
            continue
        if name.startswith("max_"):
            if not value.isdigit() or len(value) > 9:
                problems[name] = ["A whole number."]
                continue
            given[name] = int(value)
        else:
            given[name] = request.form.get(name) if name == "description" else value
    if problems:
        raise EvershellError(ErrorCode.VALIDATION_ERROR, "Some fields need attention.", 400,
                             {"fields": problems})
    files = [f for f in request.files.getlist("file") if f and f.filename]
    return given, files


def _errors(exc: EvershellError) -> dict:
    fields = (exc.details or {}).get("fields") or {}
    return {name: problems for name, problems in fields.items()} or {"_": [exc.message]}


def _to(target: str, message: str | None = None, category: str = "success"):
    if message:
        flash(message, category)
    if request.headers.get("HX-Request"):
        return "", 204, {"HX-Redirect": target}
    return redirect(target, 303)


def _refusal(exc: EvershellError):
    """403/404 and server errors render as the console's error pages."""
    db.session.rollback()
    if exc.status >= 500 or exc.status in (403, 404):
        raise exc


@blp.post("")
@console_page(requires=SUBMIT, billing=Billing.CREATE, action="task.submit")
def create():
    principal = current_principal()
    try:
        given, files = _given(FIELDS)
        if not given.get("role_id"):
            raise EvershellError(ErrorCode.VALIDATION_ERROR, "Pick a role.", 400,
                                 {"fields": {"role_id": ["Pick a role."]}})
        task = services.submit(principal, given, files)
        task_id = task.id
        db.session.commit()
    except EvershellError as exc:
        _refusal(exc)
        context = {"errors": _errors(exc), "values": request.form, **form_context(principal)}
        if request.headers.get("HX-Request"):  # htmx swaps only 2xx answers
            return render_template("tasks/_new.html", **context)
        return render_template("tasks/new.html", **context), exc.status
    return _to(url_for("tasks_views.show", task_id=task_id))


# -- one task ----------------------------------------------------------------------------

def transcript(log: list[dict]) -> list[dict]:
    """The log as what a person reads: replies (streamed deltas joined, then the final
    text), tool calls with their results, and the task's own milestones."""
    items: list[dict] = []
    open_text: dict | None = None
    calls: dict[str, dict] = {}
    for event in log:
        kind, data = event["type"], event["data"]
        if kind == "message.delta":
            if open_text is None:
                open_text = {"kind": "text", "id": f"msg-{event['id']}", "text": "",
                             "streaming": True}
                items.append(open_text)
            open_text["text"] += data.get("text") or ""
        elif kind == "message.created":
            text = data.get("text") or ""
            if open_text is None:
                if text:
                    items.append({"kind": "text", "id": f"msg-{event['id']}", "text": text,
                                  "streaming": False})
            elif text:
                open_text.update(text=text, streaming=False)
            else:
                items.remove(open_text)
            open_text = None
        elif kind == "tool.call":
            open_text = None
            call = {"kind": "tool", "id": f"call-{event['id']}", "name": data.get("name"),
                    "arguments": data.get("arguments") or {}, "result": None}
            calls[data.get("id") or call["id"]] = call
            items.append(call)
        elif kind == "tool.result":
            call = calls.get(data.get("id"))
            if call is None:
                call = {"kind": "tool", "id": f"call-{event['id']}", "name": data.get("name"),
                        "arguments": {}, "result": None}
                items.append(call)
            call["result"] = data
        elif kind.startswith("task."):
            open_text = None
            items.append({"kind": "milestone", "id": f"ev-{event['id']}", "type": kind,
                          "data": data, "at": event.get("created_at")})
    return items


def _detail(task_id: str) -> dict:
    principal = current_principal()
    task = services.load(principal, task_id)
    log = services.all_events(task)
    return {
        "task": task, "items": transcript(log), "last_event": log[-1]["id"] if log else 0,
        "done": task.status in TERMINAL,
        "can_cancel": services.can_cancel(principal, task),
        "can_follow_up": services.can_follow_up(principal, task),
    }


@blp.get("/<id:task_id>")
@console_page(requires=READ)
def show(task_id: str):
    try:
        return render_template("tasks/show.html", **_detail(task_id))
    except EvershellError as exc:
        _refusal(exc)
        raise


@blp.post("/<id:task_id>/cancel")
@console_page(requires=any_of(S.TASKS_WRITE_OWN), billing=Billing.WIND_DOWN,
              action="task.cancel")
def cancel(task_id: str):
    page = url_for("tasks_views.show", task_id=task_id)
    try:
        services.cancel(current_principal(), task_id, cause="console")
        db.session.commit()
    except EvershellError as exc:
        _refusal(exc)
        return _to(page, exc.message, "error")
    return _to(page, "Cancelling: what runs in the sandbox is stopped.")


@blp.post("/<id:task_id>/next")
@console_page(requires=SUBMIT, billing=Billing.CREATE, action="task.submit")
def follow_up(task_id: str):
    principal = current_principal()
    page = url_for("tasks_views.show", task_id=task_id)
    try:
        task = services.load(principal, task_id)
        given, files = _given(NEXT_FIELDS)
        created = services.submit_next(principal, task.workspace_id, given, files)
        created_id = created.id
        db.session.commit()
    except EvershellError as exc:
        _refusal(exc)
        return _to(page, " ".join(" ".join(p) for p in _errors(exc).values()), "error")
    return _to(url_for("tasks_views.show", task_id=created_id))


# -- live (the console's SSE) ------------------------------------------------------------

@blp.get("/<id:task_id>/live")
@console_page(requires=READ)
def live_view(task_id: str):
    """The task page's moving parts, re-rendered from the log after each event."""
    services.load(current_principal(), task_id)  # 403/404 before streaming
    subscriber = live.subscriber(current_app._get_current_object())

    item = get_template_attribute("tasks/_items.html", "item")
    sent: dict[str, str] = {}  # what this connection showed, by entry id

    def render() -> tuple[bytes, bool]:
        context = _detail(task_id)
        parts = [render_template("tasks/_live.html", oob=True, **context)]
        first = not sent
        if first:  # (re)connected: the whole transcript replaces the page's
            parts.append(render_template("tasks/_transcript.html", oob=True, **context))
        for entry in context["items"]:
            html = str(item(entry))
            if sent.get(entry["id"]) == html:
                continue  # unchanged: a tool output someone opened stays open
            if first:
                pass
            elif entry["id"] in sent:
                parts.append(str(item(entry, oob=True)))
            else:
                parts.append(f'<div hx-swap-oob="beforeend:#task-transcript">{html}</div>')
            sent[entry["id"]] = html
        return _frame("".join(parts), context["last_event"]), context["done"]

    def frames() -> Iterator[bytes]:
        db.session.close()  # the route's transaction is over; hold nothing while streaming
        client = subscriber.register(services.stream_key(task_id))
        try:
            yield f"retry: {RETRY_MS}\n\n".encode()
            deadline = time.monotonic() + MAX_SECONDS
            while True:
                with _short_session():
                    frame, done = render()
                yield frame
                if done:
                    return
                while not client.wait(HEARTBEAT_SECONDS):
                    if time.monotonic() >= deadline:
                        return
                    yield b": heartbeat\n\n"
        finally:
            subscriber.unregister(client)

    response = Response(stream_with_context(frames()), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache, no-transform"
    response.headers["X-Accel-Buffering"] = "no"
    return response


def _frame(html: str, number: int) -> bytes:
    """One ``task`` SSE frame; every line kept (tool output in <pre> keeps blank lines)."""
    lines = html.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    data = "".join(f"data: {line}\n" for line in lines)
    return f"id: {number}\nevent: task\n{data}\n".encode()


@contextmanager
def _short_session():
    session = db.session()
    session.connection(execution_options={BEGIN_OPTION: "DEFERRED"})
    try:
        yield session
    finally:
        session.close()


# -- the workspace page's task list ------------------------------------------------------

@blp.app_template_global("workspace_tasks")
def workspace_tasks(workspace_id: str) -> list[Task] | None:
    """The workspace's tasks, newest first, for its page; None when the caller cannot
    read tasks (the section is then not shown)."""
    principal = current_principal()
    if not principal.has(READ):
        return None
    try:
        page = services.list_tasks(principal, limit=WORKSPACE_TASKS, cursor=None,
                                   workspace_id=workspace_id)
    except EvershellError:
        return None
    return sorted(page["data"], key=lambda t: t.number, reverse=True)


@blp.app_template_filter("task_bytes")
def _bytes(value) -> str:
    if value is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)

