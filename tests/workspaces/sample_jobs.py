"""Jobs used by the worker tests (RQ imports jobs by dotted path)."""

from evershell.extensions import db
from evershell.sandbox.backend import Limits
from evershell.workspaces import sandboxes
from evershell.workspaces.models import Workspace
from jobs import job


@job
def sleep_in_sandbox(workspace_id: str) -> None:
    """A long command in the workspace's sandbox, as a task's tool call runs one."""
    workspace = db.session.get(Workspace, workspace_id)
    uid = workspace.sandbox_uid
    db.session.commit()
    sandboxes.backend().exec(workspace_id, uid, "sleep 600", env={},
                             limits=Limits(wall_seconds=600, cpu_seconds=600))
