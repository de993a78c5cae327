"""``/v1/tasks`` and ``POST /v1/workspaces/{id}/tasks`` (seed 001)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import request
from flask.views import MethodView

from evershell.access.principal import current_principal
from evershell.access.routes import Billing, all_of, any_of, declare
from evershell.access.scopes import Scope
from evershell.core import inputs
from evershell.core.api import Blueprint
from evershell.core.errors import ErrorCode as E
from evershell.core.errors import validation_error
from evershell.core.pagination import page_schema
from evershell.events import sse
from evershell.tasks import services
from evershell.tasks.schemas import (
    TaskCreateSchema,
    TaskListArgsSchema,
    TaskLogArgsSchema,
    TaskLogSchema,
    TaskOptionsSchema,
    TaskSchema,
    TaskSubmittedSchema,
)

blp = Blueprint("tasks", __name__, url_prefix="/v1",
                description="Tasks: agent runs in workspaces, with their live event streams.")

S = Scope
READ = (S.TASKS_READ, S.TASKS_READ_OWN)
SUBMIT = all_of(any_of(S.WORKSPACE_WRITE, S.WORKSPACE_WRITE_OWN),
                any_of(S.TASKS_WRITE, S.TASKS_WRITE_OWN))
MULTIPART = "multipart/form-data"
JSON = "application/json"
TERMINAL_EVENTS = {"task.completed", "task.failed", "task.cancelled"}
_ROLE = (E.ROLE_NOT_FOUND, E.ROLE_ARCHIVED, E.PROVIDER_ARCHIVED, E.PROVIDER_NOT_FOUND,
         E.NETWORK_POLICY_UNSUPPORTED)


def _body(schema: ma.Schema) -> tuple[dict[str, Any], list]:
    """The submitted fields and files, from JSON or a multipart form."""
    if request.mimetype == MULTIPART:
        fields = {key: value for key, value in request.form.items() if value != ""}
        try:
            inputs.check_pairs(request.form.items(multi=True))
        except inputs.HostileInput as exc:
            raise inputs.refusal(exc) from None
        unknown = set(request.files) - {"file"}
        if unknown:
            raise validation_error({name: ["Only `file` parts carry files."]
                                    for name in sorted(unknown)})
        files = request.files.getlist("file")
    else:
        raw = request.get_data(cache=True)
        try:
            fields = inputs.load_json(raw) if raw else {}
        except inputs.HostileInput as exc:
            raise inputs.refusal(exc) from None
        except ValueError:
            raise validation_error({"body": ["The request body is not valid JSON."]},
                                   "The request body is not valid JSON.") from None
        if not isinstance(fields, dict):
            raise validation_error({"body": ["A JSON object is expected."]})
        files = []
    try:
        data = schema.load(fields)
    except ma.ValidationError as exc:
        raise validation_error(exc.normalized_messages()) from None
    return data, files


_BODY_DOC = {"requestBody": {"required": True, "content": {
    JSON: {"schema": TaskCreateSchema},
    MULTIPART: {"schema": {"allOf": [{"$ref": "#/components/schemas/TaskCreate"}, {
        "type": "object", "properties": {"file": {
            "type": "array", "items": {"type": "string", "format": "binary"},
            "description": "Repeatable: each lands in /data/uploads/<task_id>/<filename>"}}}]}},
}}}


@blp.route("/tasks")
class Tasks(MethodView):
    @declare(READ, Billing.READ)
    @blp.arguments(TaskListArgsSchema, location="query")
    @blp.response(200, page_schema(TaskSchema, "TaskPage"))
    def get(self, args):
        """List tasks: the org's with `tasks:read`, those in your workspaces with `:own`."""
        return services.list_tasks(current_principal(), limit=args["limit"],
                                   cursor=args["cursor"], workspace_id=args["workspace_id"],
                                   status=args["status"], mine=args["mine"])

    @declare(SUBMIT, Billing.CREATE, action="task.submit")
    @inputs.accepts(JSON, MULTIPART)
    @blp.doc(**_BODY_DOC)
    @blp.response(202, TaskSubmittedSchema)
    @blp.errors(*_ROLE, E.INVALID_CAPABILITIES, E.CREDENTIAL_NOT_FOUND)
    def post(self):
        """Create a workspace and submit its first task atomically (seed 001). JSON or
        `multipart/form-data` with repeatable `file` parts. 202: the workspace goes
        `provisioning → idle → busy` and the task `submitted → queued → running`."""
        data, files = _body(TaskCreateSchema())
        return services.submit(current_principal(), data, files)


@blp.route("/workspaces/<id:workspace_id>/tasks", methods=["POST"])
@declare(SUBMIT, Billing.CREATE, action="task.submit")
@inputs.accepts(JSON, MULTIPART)
@blp.doc(requestBody={"required": True, "content": {JSON: {"schema": TaskOptionsSchema},
                                                    MULTIPART: {"schema": TaskOptionsSchema}}})
@blp.response(202, TaskSubmittedSchema)
@blp.errors(E.WORKSPACE_NOT_FOUND, E.WORKSPACE_NOT_VISIBLE, E.WORKSPACE_STATE_CONFLICT,
            E.TASK_ALREADY_RUNNING, *_ROLE)
def submit_next(workspace_id):
    """Submit the next task into a workspace: an idle one runs it now, a stopped one is
    started first. 409 `task_already_running` while another task of it is active."""
    data, files = _body(TaskOptionsSchema())
    return services.submit_next(current_principal(), workspace_id, data, files)


@blp.route("/tasks/<id:task_id>", methods=["GET"])
@declare(READ, Billing.READ)
@blp.response(200, TaskSchema)
@blp.errors(E.TASK_NOT_FOUND)
def get_task(task_id):
    """One task: status, description, result, token usage, tool calls, timings, failure."""
    return services.load(current_principal(), task_id)


@blp.route("/tasks/<id:task_id>/cancel", methods=["POST"])
@declare((S.TASKS_WRITE, S.TASKS_WRITE_OWN), Billing.WIND_DOWN, action="task.cancel")
@blp.response(202, TaskSchema)
@blp.errors(E.TASK_NOT_FOUND)
def cancel(task_id):
    """Cancel: a task that has not started ends `cancelled` now; a running one stops at
    once (its sandboxed processes are killed) and ends `cancelled`."""
    return services.cancel(current_principal(), task_id)


@blp.route("/tasks/<id:task_id>/log", methods=["GET"])
@declare(READ, Billing.READ)
@blp.arguments(TaskLogArgsSchema, location="query")
@blp.response(200, TaskLogSchema)
@blp.errors(E.TASK_NOT_FOUND)
def task_log(args, task_id):
    """The task's events as JSON, the same objects as the SSE frames, oldest first."""
    return services.log(current_principal(), task_id, args["after"], args["limit"])


@blp.route("/tasks/<id:task_id>/events", methods=["GET"])
@declare(READ, Billing.READ, sse=True)
@blp.response(200, description="Server-sent events of the task",
              content_type="text/event-stream")
@blp.errors(E.TASK_NOT_FOUND)
def task_events(task_id):
    """The task's event stream (SSE); it ends after `task.completed`, `task.failed` or
    `task.cancelled`. Resume with `Last-Event-ID` or `?after=`."""
    task = services.load(current_principal(), task_id)
    return sse.stream(services.stream_key(task.id),
                      after=sse.after_param(request.args.get("after")),
                      terminal_types=TERMINAL_EVENTS, is_finished=None)
