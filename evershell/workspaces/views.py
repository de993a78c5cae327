"""Console: Workspaces (the list with live status badges, filters and "New workspace")
and a workspace's page (its seed-004 fields in words, a live status timeline,
snapshots with "Fork from here", a browser of ``/data`` and the lifecycle buttons).

Both pages stay current over one console SSE route each (``_live``), authenticated by
the console cookie like every page here. Its frames are HTML whose parts replace
elements by id (``hx-swap-oob``), never append: on every (re)connect the route first
sends the current state, so a reconnect to the same URL shows nothing twice.
Lifecycle buttons post to the same service functions as ``/v1`` and come back to a
page with a flash message; a button shows only when the caller may press it and the
status allows it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from evershell.access import billing
from evershell.access.principal import Principal, current_principal
from evershell.access.routes import Billing
from evershell.access.scopes import Scope
from evershell.access.web import console_page
from evershell.core.db import BEGIN_OPTION
from evershell.core.errors import ErrorCode, EvershellError
from evershell.core.pagination import MAX_LIMIT
from evershell.events import live
from evershell.extensions import db
from evershell.orgs.models import Org
from evershell.roles import services as roles
from evershell.sandbox.backend import HostNotReady
from evershell.workspaces import environments, files, lifecycle, services
from evershell.workspaces.models import LIVE, Status

log = logging.getLogger(__name__)
blp = Blueprint("workspaces_views", __name__, url_prefix="/workspaces")
READ, WRITE = Scope.WORKSPACE_READ_OWN, Scope.WORKSPACE_WRITE_OWN  # org-wide ones imply these
PAGE_SIZE = 50
HEARTBEAT_SECONDS = 15.0
MAX_SECONDS = 1800.0
RETRY_MS = 3000
FILTERS = ("status", "role_id", "archived", "scope")


def _htmx() -> bool:
    return bool(request.headers.get("HX-Request")) and \
        not request.headers.get("HX-History-Restore-Request")


def _can_create() -> bool:
    return billing.can_create(db.session.get(Org, current_principal().org_id))


# -- what a person may do ----------------------------------------------------------------

def allowed_actions(actor: Principal, workspace, has_snapshot: bool,
                    can_create: bool) -> dict[str, bool]:
    """Each lifecycle button: shown only when the caller may do it AND the status allows
    it (SPEC §7), so none of them answers 403 or 409 when pressed."""
    change = services.can_change(actor, workspace)
    status, archived = workspace.status, workspace.archived_at is not None
    return {
        "stop": change and not archived and status in LIVE,
        "start": change and can_create and not archived and (
            status == Status.STOPPED or (status == Status.FAILED and has_snapshot)),
        "fork": actor.has(WRITE) and can_create and has_snapshot
                and status != Status.PROVISIONING,
        "archive": change and not archived and status in (Status.STOPPED, Status.FAILED),
        "unarchive": change and can_create and archived,
        "delete": change,
    }


# -- the list ----------------------------------------------------------------------------

def _filters() -> dict[str, str]:
    values = {name: request.args.get(name, "") for name in FILTERS}
    if values["status"] not in {s.value for s in Status}:
        values["status"] = ""
    if values["archived"] != "true":
        values["archived"] = ""
    everyone = current_principal().has_org_wide(Scope.WORKSPACE_READ)
    values["scope"] = "mine" if values["scope"] == "mine" and everyone else ""
    return values


def _listing(filters: dict[str, str], cursor: str | None, limit: int | None = None) -> dict:
    return services.list_workspaces(
        current_principal(), limit=limit or PAGE_SIZE, cursor=cursor,
        status=filters["status"] or None, role_id=filters["role_id"] or None,
        mine=filters["scope"] == "mine", archived=filters["archived"] == "true")


def _names(org_id: str, workspaces) -> dict:
    return {"role_names": services.role_names(org_id),
            "emails": services.people({w.created_by_user_id for w in workspaces})}


def _form_context(principal: Principal) -> dict:
    if not principal.has(WRITE):
        return {}
    return {"roles": roles.list_roles(principal, MAX_LIMIT, None)["data"],
            "environments": list(environments.available().values()),
            "can_create": _can_create()}


@blp.get("")
@console_page(requires=READ)
def index():
    principal = current_principal()
    filters = _filters()
    cursor = request.args.get("cursor") or None
    error = None
    try:
        page = _listing(filters, cursor)
    except EvershellError as exc:  # a cursor this console did not issue
        if exc.status >= 500:
            raise
        page, error, cursor = {"data": [], "next_cursor": None}, exc.message, None
    rows = page["data"]
    active = {k: v for k, v in filters.items() if v}
    newest = request.args.get("newest") or (rows[0].id if rows else None)
    context = {
        "workspaces": rows, "filters": filters, "error": error, "filtered": bool(active),
        "everyone": principal.has_org_wide(Scope.WORKSPACE_READ),
        "more_url": url_for("workspaces_views.index", cursor=page["next_cursor"],
                            newest=newest, **active) if page["next_cursor"] else None,
        # The live badges of every row shown so far: "Load more" widens the range.
        "live_url": url_for("workspaces_views.live_list", newest=newest,
                            oldest=rows[-1].id, **active) if rows else None,
        **_names(principal.org_id, rows),
    }
    if _htmx() and cursor:
        return render_template("workspaces/_rows.html", **context)
    if _htmx():
        return render_template("workspaces/_results.html", **context)
    return render_template("workspaces/index.html", **context, **_form_context(principal))


@blp.post("")
@console_page(requires=WRITE, billing=Billing.CREATE, action="workspace.create")
def create():
    try:
        workspace = services.create(current_principal(), request.form.get("role_id") or None,
                                    None, request.form.get("environment") or None)
        workspace_id = workspace.id
        db.session.commit()
    except EvershellError as exc:
        return _refused(exc, url_for("workspaces_views.index"))
    return _to(url_for("workspaces_views.show", workspace_id=workspace_id),
               "Provisioning your workspace: its status changes here as it goes.")


# -- one workspace -----------------------------------------------------------------------

def _detail(workspace_id: str, path: str = "/data") -> dict:
    """Everything the workspace page and its live fragments show."""
    principal = current_principal()
    workspace = services.get(principal, workspace_id)
    snapshots = services.all_snapshots(principal, workspace_id)
    events = services.timeline(principal, workspace_id)
    can_create = _can_create()
    names = services.role_names(principal.org_id)
    people = services.people({workspace.created_by_user_id}
                             | {e["data"].get("actor") for e in events})
    parent = services.current_states(principal, [workspace.parent_workspace_id]) \
        if workspace.parent_workspace_id else {}
    return {
        "workspace": workspace, "snapshots": snapshots, "events": events,
        "last_event": events[-1]["id"] if events else 0,
        "actions": allowed_actions(principal, workspace, bool(snapshots), can_create),
        "can_create": can_create, "role_names": names, "emails": people,
        "latest_snapshot": snapshots[0] if snapshots else None,
        "files": _files(principal, workspace, path),
        "parent_visible": any(p.deleted_at is None for p in parent.values()),
    }


def _files(principal: Principal, workspace, path: str) -> dict:
    """The file browser's state: a listing, or why there is none."""
    if workspace.status not in LIVE:
        return {"path": path, "entries": None, "reason": _why_no_files(workspace)}
    try:
        listing = files.listing(principal, workspace.id, path)
    except EvershellError as exc:
        if exc.code not in (ErrorCode.FILE_NOT_FOUND, ErrorCode.WORKSPACE_STATE_CONFLICT):
            raise
        return {"path": path, "entries": None, "reason": exc.message,
                "parent": _parent(path)}
    except HostNotReady as exc:  # this web process cannot reach the sandboxes' disk
        log.warning("file browser unavailable: %s", exc)
        return {"path": path, "entries": None, "reason": "This server cannot show the "
                "workspace's files (its sandbox directory is not set up here)."}
    return {"path": listing["path"], "entries": listing["data"], "reason": None,
            "parent": _parent(listing["path"])}


def _why_no_files(workspace) -> str:
    if workspace.status == Status.PROVISIONING:
        return "The files appear once the workspace is provisioned."
    if workspace.status == Status.STOPPING:
        return "The workspace is stopping: its files are being saved to a snapshot."
    return ("Only a running workspace's files can be browsed. Start it to browse /data "
            "again, or fork one of its snapshots." if workspace.status != Status.FAILED
            else "A failed workspace has no live files.")


def _parent(path: str) -> str | None:
    trimmed = path.rstrip("/")
    if trimmed in ("", "/data"):
        return None
    return trimmed.rsplit("/", 1)[0] or "/data"


@blp.get("/<id:workspace_id>")
@console_page(requires=READ)
def show(workspace_id: str):
    return render_template("workspaces/show.html", **_detail(workspace_id))


@blp.get("/<id:workspace_id>/files")
@console_page(requires=READ)
def browse(workspace_id: str):
    path = request.args.get("path") or "/data"
    if _htmx():
        principal = current_principal()
        workspace = services.get(principal, workspace_id)
        return render_template("workspaces/_files.html", workspace=workspace,
                               files=_files(principal, workspace, path))
    return render_template("workspaces/show.html", **_detail(workspace_id, path))


@blp.get("/<id:workspace_id>/files/content")
@console_page(requires=READ)
def download(workspace_id: str):
    name, chunks = files.content(current_principal(), workspace_id,
                                 request.args.get("path", ""))
    response = Response(stream_with_context(chunks), mimetype="application/octet-stream")
    response.headers["Content-Disposition"] = files.disposition(name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# -- lifecycle buttons -------------------------------------------------------------------

def _to(target: str, message: str, category: str = "success"):
    flash(message, category)
    if request.headers.get("HX-Request"):
        return "", 204, {"HX-Redirect": target}
    return redirect(target, 303)


def _refused(exc: EvershellError, target: str):
    """A refusal a person can act on (the status moved meanwhile, billing) comes back as
    a message on the page they were on; 403/404 render as error pages."""
    db.session.rollback()
    if exc.status >= 500 or exc.status in (403, 404):
        raise exc
    return _to(target, exc.message, "error")


def _lifecycle(name: str, billing_class: Billing, message: str):
    @console_page(requires=WRITE, billing=billing_class, action=f"workspace.{name}")
    def action(workspace_id: str):
        page = url_for("workspaces_views.show", workspace_id=workspace_id)
        try:
            getattr(services, name)(current_principal(), workspace_id)
            db.session.commit()
        except EvershellError as exc:
            return _refused(exc, page)
        if name == "delete":
            return _to(url_for("workspaces_views.index"), message)
        return _to(page, message)

    action.__name__ = name
    blp.post(f"/<id:workspace_id>/{name}", endpoint=name)(action)


_lifecycle("stop", Billing.WIND_DOWN, "Stopping: /data is saved to a snapshot, then the "
           "sandbox is freed.")
_lifecycle("start", Billing.CREATE, "Starting from the latest snapshot, on the role's "
           "current version.")
_lifecycle("archive", Billing.WIND_DOWN, "Archived. It refuses start and stop until it is "
           "unarchived; you can still fork or delete it.")
_lifecycle("unarchive", Billing.CREATE, "Unarchived.")
_lifecycle("delete", Billing.WIND_DOWN, "Deleted the workspace. Its snapshots are kept "
           "until the retention period ends.")


@blp.post("/<id:workspace_id>/fork")
@console_page(requires=WRITE, billing=Billing.CREATE, action="workspace.fork")
def fork(workspace_id: str):
    try:
        child = services.fork(current_principal(), workspace_id,
                              request.form.get("snapshot_ref") or None)
        child_id = child.id
        db.session.commit()
    except EvershellError as exc:
        return _refused(exc, url_for("workspaces_views.show", workspace_id=workspace_id))
    return _to(url_for("workspaces_views.show", workspace_id=child_id),
               "Forked: this new workspace of yours is provisioning from the snapshot.")


# -- live updates (the console's SSE) ----------------------------------------------------

@blp.get("/live")
@console_page(requires=READ)
def live_list():
    """The status badges of the list's rows, as they change."""
    principal = current_principal()
    filters = _filters()
    newest, oldest = request.args.get("newest", ""), request.args.get("oldest", "")
    rows = [w for w in _listing(filters, None, MAX_LIMIT)["data"]
            if oldest <= w.id <= newest]
    watched = [w.id for w in rows]
    sent: dict[str, tuple] = {}

    def render() -> tuple[bytes, bool]:
        states = services.current_states(principal, watched)
        parts = []
        for workspace_id in watched:
            workspace = states.get(workspace_id)
            state = ("gone", None) if workspace is None or workspace.deleted_at else \
                (workspace.status, workspace.archived_at is not None)
            if sent.get(workspace_id) != state:
                sent[workspace_id] = state
                parts.append(render_template("workspaces/_status.html", oob=True,
                                             workspace_id=workspace_id, state=state))
        return _frame("status", "".join(parts)), False

    return _live([lifecycle.stream_key(w) for w in watched], render)


@blp.get("/<id:workspace_id>/live")
@console_page(requires=READ)
def live_detail(workspace_id: str):
    """The workspace page's status, facts, buttons, snapshots and timeline, as they
    change; the file browser when the workspace comes up or goes down."""
    services.get(current_principal(), workspace_id)  # 403/404 before streaming
    files_live = [request.args.get("files") == "live"]

    def render() -> tuple[bytes, bool]:
        try:
            context = _detail(workspace_id)
        except EvershellError as exc:
            if exc.status >= 500:
                raise
            return _frame("workspace", render_template("workspaces/_gone.html",
                                                             workspace_id=workspace_id)), True
        now_live = context["workspace"].status in LIVE
        context["with_files"] = now_live != files_live[0]
        files_live[0] = now_live
        return _frame("workspace", render_template("workspaces/_live.html", oob=True,
                                                      **context),
                      context["last_event"]), False

    return _live([lifecycle.stream_key(workspace_id)], render)


def _frame(event: str, html: str, number: int | None = None) -> bytes:
    if not html.strip():
        return b""
    lines = "".join(f"data: {line}\n" for line in html.splitlines() if line.strip())
    head = f"id: {number}\n" if number else ""
    return f"{head}event: {event}\n{lines}\n".encode()


def _live(stream_keys: list[str], render: Callable[[], tuple[bytes, bool]]) -> Response:
    """The console's SSE: subscribe to ``stream_keys`` first, then send what ``render``
    says (the current state, as fragments that replace by id) now and after each event,
    with heartbeats; close after 30 minutes with a ``retry:`` hint (the browser
    reconnects and gets the current state again), or when ``render`` says it is done."""
    subscriber = live.subscriber(current_app._get_current_object())

    def frames() -> Iterator[bytes]:
        db.session.close()  # the route's transaction is over; hold nothing while streaming
        clients = [subscriber.register(key) for key in stream_keys]
        try:
            yield f"retry: {RETRY_MS}\n\n".encode()
            now = time.monotonic()
            deadline, next_beat = now + MAX_SECONDS, now + HEARTBEAT_SECONDS
            while True:
                with _short_session():
                    frame, done = render()
                if frame:
                    yield frame
                if done:
                    return
                while True:
                    now = time.monotonic()
                    if now >= deadline:
                        return
                    if now >= next_beat:
                        yield b": heartbeat\n\n"
                        next_beat = now + HEARTBEAT_SECONDS
                    if _wait_any(clients, min(next_beat, deadline) - now):
                        break
        finally:
            for client in clients:
                subscriber.unregister(client)

    response = Response(stream_with_context(frames()), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache, no-transform"
    response.headers["X-Accel-Buffering"] = "no"
    return response


def _wait_any(clients: list[live.Client], timeout: float) -> bool:
    """Whether any client got something within ``timeout`` seconds. Events only say
    "look again" here (``render`` reads the database), so what they carry is dropped."""
    if not clients:
        time.sleep(timeout)
        return False
    if len(clients) == 1:
        return bool(clients[0].wait(timeout))
    deadline = time.monotonic() + timeout
    while True:
        if any([client.wait(0) for client in clients]):
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        # The first client blocks; the others are looked at twice a second.
        if clients[0].wait(min(0.5, remaining)):
            return True


@contextmanager
def _short_session():
    """One read, its connection returned straight after (deferred on SQLite: streaming
    never queues behind, or holds, the write lock)."""
    session = db.session()
    session.connection(execution_options={BEGIN_OPTION: "DEFERRED"})
    try:
        yield session
    finally:
        session.close()


@blp.app_template_filter("workspace_when")
def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


@blp.app_template_filter("workspace_mtime")
def _mtime(value: float) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")


@blp.app_template_global("pack_status_words")
def _pack_status_words(status: str) -> str:
    return {
        "current": "Current: the live /data holds the role's current packs at their current "
                   "versions.",
        "stale": "Stale: the role or one of its packs changed since this workspace mounted "
                 "them. Stop and start it to mount the current ones.",
    }.get(status, "Unknown: the workspace is not running, so nothing is mounted to compare.")
