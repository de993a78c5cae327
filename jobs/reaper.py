"""The reaper (periodic, on the worker): settles workspaces whose job died."""

from __future__ import annotations

from jobs import job


@job
def sweep() -> dict[str, str]:
    from evershell.workspaces import reaper
    return reaper.sweep()
