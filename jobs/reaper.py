"""The reaper (periodic, on the worker): settles workspaces whose job died, and writes
API keys' recorded uses to the database."""

from __future__ import annotations

from jobs import job


@job
def sweep() -> dict[str, str]:
    from evershell.workspaces import reaper
    return reaper.sweep()


@job
def flush_key_uses() -> int:
    from evershell.apikeys import services
    return services.flush_last_used()
