"""Request and response shapes of ``/v1/workspaces`` (seed 004's fields)."""

from datetime import UTC, datetime

import marshmallow as ma

from evershell.core.pagination import PageArgsSchema
from evershell.workspaces.models import Status

_STATUSES = [s.value for s in Status]
_REF = {"pattern": "^[0-9a-f]{64}$", "description": "A snapshot's content hash (sha256)"}


class WorkspaceSchema(ma.Schema):
    id = ma.fields.String(required=True)
    org_id = ma.fields.String(required=True)
    role_id = ma.fields.String(required=True, allow_none=True, metadata={
        "description": "Null only after the role was deleted (a deleted workspace)"})
    role_version = ma.fields.Integer(metadata={
        "description": "The role version this workspace was provisioned or last started "
                       "from"})
    environment = ma.fields.String()
    status = ma.fields.String(required=True, metadata={
        "enum": _STATUSES, "description": "Archived workspaces keep their status and carry "
                                          "a non-null archived_at."})
    created_by_user_id = ma.fields.String(allow_none=True)
    snapshot_ref = ma.fields.String(allow_none=True, metadata=_REF)
    last_snapshot_error = ma.fields.String(allow_none=True, metadata={
        "description": "Set when a stop found no live directory and could not save a "
                       "snapshot (snapshot_ref is then empty); cleared by the next "
                       "successful snapshot."})
    failure_reason = ma.fields.String(allow_none=True, metadata={
        "description": "Why the workspace is failed"})
    parent_workspace_id = ma.fields.String(allow_none=True)
    fork_source_snapshot_ref = ma.fields.String(allow_none=True)
    fork_point_task_count = ma.fields.Integer(allow_none=True)
    pack_status = ma.fields.String(metadata={
        "enum": ["current", "stale", "unknown"],
        "description": "Whether the live directory holds the role's current packs at their "
                       "current versions; computed at read time."})
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
    archived_at = ma.fields.DateTime(allow_none=True)


class WorkspaceListArgsSchema(PageArgsSchema):
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(_STATUSES))
    role_id = ma.fields.String(load_default=None, validate=ma.validate.Length(max=40))
    mine = ma.fields.Boolean(load_default=False, metadata={
        "description": "Only workspaces you created (always so with :own scopes)"})
    archived = ma.fields.Boolean(load_default=False, metadata={
        "description": "false (default): not archived; true: only archived"})


class WorkspaceCreateSchema(ma.Schema):
    role_id = ma.fields.String(load_default=None, validate=ma.validate.Length(max=40))
    role_name = ma.fields.String(load_default=None, validate=ma.validate.Length(min=1, max=200))
    environment = ma.fields.String(load_default=None, validate=ma.validate.Length(min=1, max=64),
                                   metadata={"description": "An environment profile of this "
                                                            "server (default `default`)"})

    @ma.validates_schema
    def _one_role(self, data, **_kwargs):
        if not data.get("role_id") and not data.get("role_name"):
            raise ma.ValidationError("Give role_id or role_name.", "role_id")


class WorkspaceForkSchema(ma.Schema):
    snapshot_ref = ma.fields.String(load_default=None, validate=ma.validate.Regexp(
        "^[0-9a-f]{64}$", error="Not a snapshot ref (64 hex characters)."), metadata=_REF)
    task_count = ma.fields.Integer(load_default=None, validate=ma.validate.Range(min=0),
                                   strict=True)

    @ma.validates_schema
    def _one_point(self, data, **_kwargs):
        if data.get("snapshot_ref") is not None and data.get("task_count") is not None:
            raise ma.ValidationError("Give snapshot_ref or task_count, not both.",
                                     "snapshot_ref")


class SnapshotSchema(ma.Schema):
    id = ma.fields.String()
    workspace_id = ma.fields.String()
    snapshot_ref = ma.fields.String(attribute="ref", metadata=_REF)
    task_count = ma.fields.Integer()
    size_bytes = ma.fields.Integer()
    cause = ma.fields.String(metadata={"enum": ["stop", "checkpoint"]})
    created_at = ma.fields.DateTime()


class FileArgsSchema(ma.Schema):
    path = ma.fields.String(load_default="/data", validate=ma.validate.Length(max=4096),
                            metadata={"description": "Absolute under /data, or relative to "
                                                     "/data/work"})


class FileEntrySchema(ma.Schema):
    name = ma.fields.String()
    path = ma.fields.String()
    type = ma.fields.String(metadata={"enum": ["file", "dir", "symlink", "other"]})
    size = ma.fields.Integer()
    mode = ma.fields.Function(lambda entry: f"{entry.mode & 0o7777:04o}",
                              metadata={"description": "Permission bits, octal"})
    modified_at = ma.fields.Function(
        lambda entry: datetime.fromtimestamp(entry.mtime, UTC).isoformat(),
        metadata={"format": "date-time"})
    target = ma.fields.String(allow_none=True, metadata={
        "description": "A symlink's target, as stored (never followed out of /data)"})


class FileListSchema(ma.Schema):
    path = ma.fields.String()
    data = ma.fields.List(ma.fields.Nested(FileEntrySchema))
