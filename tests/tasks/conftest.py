"""Tasks reuse the workspace fixtures: an owner with a scripted provider and a role."""

from tests.workspaces.conftest import owner, role, world  # noqa: F401
