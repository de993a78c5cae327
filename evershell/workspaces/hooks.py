"""What the tasks domain (above workspaces) plugs into the workspace lifecycle.

Workspaces must not import tasks (imports point down), yet a stop cancels the running
task first, a workspace that becomes idle runs its waiting task, a fork copies the task
history up to its fork point, a snapshot records how many tasks had finished, and the
reaper settles tasks whose worker died too. The tasks domain sets these at start-up; until
it does, a workspace has no tasks, and the defaults say so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _nothing(*_args: Any) -> None:
    return None


def _none_finished(_workspace_id: str) -> int:
    return 0


cancel_running_task: Callable[..., None] = _nothing
copy_history: Callable[..., None] = _nothing
terminal_task_count: Callable[[str], int] = _none_finished
on_idle: Callable[..., None] = _nothing
on_failed: Callable[..., None] = _nothing
# Extra reaper sweeps: each returns {id: what it became}.
sweepers: list[Callable[[], dict[str, str]]] = []
