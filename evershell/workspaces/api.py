"""``/v1/workspaces``: isolated sandboxes with a persistent ``/data`` (seed 004)."""

from flask import Response, request, stream_with_context
from flask.views import MethodView

from evershell.access.principal import current_principal
from evershell.access.routes import Billing, declare
from evershell.access.scopes import Scope
from evershell.core.api import Blueprint
from evershell.core.errors import ErrorCode as E
from evershell.core.pagination import PageArgsSchema, page_schema
from evershell.workspaces import files, services
from evershell.workspaces.schemas import (
    FileArgsSchema,
    FileListSchema,
    SnapshotSchema,
    WorkspaceCreateSchema,
    WorkspaceForkSchema,
    WorkspaceListArgsSchema,
    WorkspaceSchema,
)

blp = Blueprint("workspaces", __name__, url_prefix="/v1/workspaces",
                description="Workspaces: isolated sandboxes whose /data persists across "
                            "stop and start, forks and archives.")

S = Scope
READ = (S.WORKSPACE_READ, S.WORKSPACE_READ_OWN)
WRITE = (S.WORKSPACE_WRITE, S.WORKSPACE_WRITE_OWN)
_SEEN = (E.WORKSPACE_NOT_FOUND, E.WORKSPACE_NOT_VISIBLE)
_ROLE = (E.ROLE_NOT_FOUND, E.ROLE_ARCHIVED, E.PROVIDER_ARCHIVED, E.PROVIDER_NOT_FOUND,
         E.NETWORK_POLICY_UNSUPPORTED)


@blp.route("")
class Workspaces(MethodView):
    @declare(READ, Billing.READ)
    @blp.arguments(WorkspaceListArgsSchema, location="query")
    @blp.response(200, page_schema(WorkspaceSchema, "WorkspacePage"))
    def get(self, args):
        """List workspaces: the org's with `workspace:read`, your own with `:own` (or
        with `mine=true`); archived ones only with `archived=true`."""
        return services.list_workspaces(
            current_principal(), limit=args["limit"], cursor=args["cursor"],
            status=args["status"], role_id=args["role_id"], mine=args["mine"],
            archived=args["archived"])

    @declare(WRITE, Billing.CREATE, action="workspace.create")
    @blp.arguments(WorkspaceCreateSchema)
    @blp.response(202, WorkspaceSchema)
    @blp.errors(*_ROLE)
    def post(self, data):
        """Provision a workspace from a role (by `role_id` or `role_name`; both must
        agree). Answers 202 with status `provisioning`; follow `GET /{id}` or the event
        stream until it is `idle`."""
        workspace = services.create(current_principal(), data["role_id"], data["role_name"],
                                    data["environment"])
        return services.view(workspace)


@blp.route("/<id:workspace_id>")
class WorkspaceById(MethodView):
    @declare(READ, Billing.READ)
    @blp.response(200, WorkspaceSchema)
    @blp.errors(*_SEEN)
    def get(self, workspace_id):
        """One workspace, with `pack_status` computed now."""
        return services.get(current_principal(), workspace_id)

    @declare(WRITE, Billing.WIND_DOWN, action="workspace.delete")
    @blp.response(202, WorkspaceSchema)
    @blp.errors(*_SEEN)
    def delete(self, workspace_id):
        """Delete from any status: cancels what runs and destroys the live directory.
        Snapshots are kept until `evershell gc`'s retention."""
        return services.delete(current_principal(), workspace_id)


def _action(name: str, billing: Billing, doc: str, *codes):
    @declare(WRITE, billing, action=f"workspace.{name}")
    @blp.response(202 if name in ("stop", "start") else 200, WorkspaceSchema)
    @blp.errors(*_SEEN, *codes)
    def action(workspace_id):
        return getattr(services, name)(current_principal(), workspace_id)

    action.__name__ = name
    action.__doc__ = doc
    blp.route(f"/<id:workspace_id>/{name}", methods=["POST"], endpoint=name)(action)


_action("stop", Billing.WIND_DOWN, "Stop (`idle`, or `busy`: the running task is cancelled "
        "first): snapshot `/data` and free the sandbox. 202; `stopping` → `stopped`.",
        E.WORKSPACE_STATE_CONFLICT)
_action("start", Billing.CREATE, "Start a `stopped` workspace (or a `failed` one that has a "
        "snapshot) from its latest snapshot, on the role's current version. 202.",
        E.WORKSPACE_STATE_CONFLICT, *_ROLE)
_action("archive", Billing.WIND_DOWN, "Archive a stopped or failed workspace (409 "
        "`workspace_running` otherwise). Archived workspaces refuse start, stop and tasks.",
        E.WORKSPACE_RUNNING)
_action("unarchive", Billing.CREATE, "Unarchive.")


@blp.route("/<id:workspace_id>/fork", methods=["POST"])
@declare(WRITE, Billing.CREATE, action="workspace.fork")
@blp.arguments(WorkspaceForkSchema, required=False)
@blp.response(202, WorkspaceSchema)
@blp.errors(*_SEEN, *_ROLE, E.WORKSPACE_STATE_CONFLICT, E.NO_SNAPSHOT, E.SNAPSHOT_NOT_FOUND)
def fork(data, workspace_id):
    """A new workspace of yours from one of this workspace's snapshots: `snapshot_ref`,
    or the latest with `task_count`, or (neither) the latest."""
    child = services.fork(current_principal(), workspace_id, data["snapshot_ref"],
                          data["task_count"])
    return services.view(child)


@blp.route("/<id:workspace_id>/snapshots", methods=["GET"])
@declare(READ, Billing.READ)
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, page_schema(SnapshotSchema, "SnapshotPage"))
@blp.errors(*_SEEN)
def snapshots(args, workspace_id):
    """The workspace's snapshots, newest first (kept as a history)."""
    return services.snapshots(current_principal(), workspace_id, args["limit"],
                              args["cursor"])


@blp.route("/<id:workspace_id>/files", methods=["GET"])
@declare(READ, Billing.READ)
@blp.arguments(FileArgsSchema, location="query")
@blp.response(200, FileListSchema)
@blp.errors(*_SEEN, E.FILE_NOT_FOUND, E.WORKSPACE_STATE_CONFLICT)
def list_files(args, workspace_id):
    """A directory of `/data`: of the live sandbox, or of the latest snapshot when the
    workspace is stopped."""
    return files.listing(current_principal(), workspace_id, args["path"])


@blp.route("/<id:workspace_id>/files/content", methods=["GET"])
@declare(READ, Billing.READ)
@blp.arguments(FileArgsSchema, location="query")
@blp.response(200, description="The file's bytes, streamed",
              content_type="application/octet-stream")
@blp.errors(*_SEEN, E.FILE_NOT_FOUND, E.WORKSPACE_STATE_CONFLICT)
def file_content(args, workspace_id):
    """Download one file of `/data` (a link is never followed out of `/data`)."""
    name, chunks = files.content(current_principal(), workspace_id, args["path"])
    response = Response(stream_with_context(chunks), mimetype="application/octet-stream")
    response.headers["Content-Disposition"] = files.disposition(name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blp.route("/<id:workspace_id>/events", methods=["GET"])
@declare(READ, Billing.READ, sse=True)
@blp.response(200, description="Server-sent events: `workspace.status` frames",
              content_type="text/event-stream")
@blp.errors(*_SEEN)
def events(workspace_id):
    """The workspace's event stream (SSE). Resume with `Last-Event-ID` or `?after=`;
    `?api_key=` is accepted here because EventSource cannot set headers."""
    return services.event_stream(current_principal(), workspace_id, request.args.get("after"))
