"""Request and response shapes of the task routes (seed 001 for ``POST /v1/tasks``)."""

import marshmallow as ma

from evershell.core.pagination import PageArgsSchema
from evershell.providers.clients import FAILURE_CODES
from evershell.roles import rules
from evershell.tasks.models import TaskStatus

_STATUSES = [s.value for s in TaskStatus]
_EFFORT = ma.validate.OneOf(["low", "medium", "high"])


class TaskOptionsSchema(ma.Schema):
    """What a task may set; absent: the role version's defaults."""

    description = ma.fields.String(required=True, validate=ma.validate.Length(min=1),
                                   metadata={"description": "What the agent is to do"})
    thinking_effort = ma.fields.String(load_default=None, validate=_EFFORT)
    max_continuations = ma.fields.Integer(load_default=None, validate=ma.validate.Range(
        *rules.MAX_CONTINUATIONS[:2]), metadata={
            "description": "Most model calls this task makes (tool rounds and continuations "
                           "alike); default the role's"})
    max_context_tokens = ma.fields.Integer(load_default=None, validate=ma.validate.Range(
        *rules.MAX_CONTEXT_TOKENS[:2]), metadata={"description": "Default the role's"})


class TaskCreateSchema(TaskOptionsSchema):
    """``POST /v1/tasks``: JSON, or the same fields as ``multipart/form-data`` with
    repeatable ``file`` parts (each lands in ``/data/uploads/<task_id>/<filename>``)."""

    role_id = ma.fields.String(load_default=None, validate=ma.validate.Length(max=40))
    role_name = ma.fields.String(load_default=None,
                                 validate=ma.validate.Length(min=1, max=200))
    environment = ma.fields.String(load_default=None,
                                   validate=ma.validate.Length(min=1, max=64))

    @ma.validates_schema
    def _one_role(self, data, **_kwargs):
        if not data.get("role_id") and not data.get("role_name"):
            raise ma.ValidationError("Give role_id or role_name.", "role_id")


class TaskSubmittedSchema(ma.Schema):
    task_id = ma.fields.String(required=True, attribute="id")
    workspace_id = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"enum": _STATUSES})


class UploadSchema(ma.Schema):
    name = ma.fields.String()
    size = ma.fields.Integer()


class TaskSchema(ma.Schema):
    id = ma.fields.String(required=True)
    org_id = ma.fields.String()
    workspace_id = ma.fields.String(required=True)
    number = ma.fields.Integer(metadata={"description": "1, 2, 3, … within the workspace"})
    status = ma.fields.String(required=True, metadata={"enum": _STATUSES})
    description = ma.fields.String()
    result = ma.fields.String(allow_none=True, metadata={
        "description": "The agent's final answer (secret values redacted)"})
    failure_code = ma.fields.String(allow_none=True, metadata={
        "description": "Why a failed task failed. The loop's: max_continuations_reached, "
                       "script_ended, sandbox_error, worker_lost, workspace_failed, "
                       "internal_error. The provider's (after any retries it asked for): "
                       + "; ".join(f"{code} ({meaning})"
                                   for code, meaning in FAILURE_CODES.items())})
    failure_reason = ma.fields.String(allow_none=True)
    input_tokens = ma.fields.Integer()
    output_tokens = ma.fields.Integer()
    tool_calls = ma.fields.Integer()
    model_calls = ma.fields.Integer()
    thinking_effort = ma.fields.String()
    max_continuations = ma.fields.Integer()
    max_context_tokens = ma.fields.Integer()
    role_version = ma.fields.Integer(allow_none=True)
    uploads = ma.fields.List(ma.fields.Nested(UploadSchema))
    created_by_user_id = ma.fields.String(allow_none=True)
    copied_from_task_id = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    queued_at = ma.fields.DateTime(allow_none=True)
    started_at = ma.fields.DateTime(allow_none=True)
    finished_at = ma.fields.DateTime(allow_none=True)
    cancel_requested_at = ma.fields.DateTime(allow_none=True)


class TaskListArgsSchema(PageArgsSchema):
    workspace_id = ma.fields.String(load_default=None, validate=ma.validate.Length(max=40))
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(_STATUSES))
    mine = ma.fields.Boolean(load_default=False)


class TaskLogArgsSchema(ma.Schema):
    after = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0))
    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(min=1, max=1000))


class EventSchema(ma.Schema):
    id = ma.fields.Integer(metadata={"description": "The event's number in its stream"})
    type = ma.fields.String()
    created_at = ma.fields.String()
    data = ma.fields.Dict()


class TaskLogSchema(ma.Schema):
    data = ma.fields.List(ma.fields.Nested(EventSchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True, metadata={
        "description": "Pass as `after` for the next page; null at the end (for now)"})
