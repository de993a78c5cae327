"""What a caps.yaml may name (the registry ``GET /v1/capabilities`` publishes) and what it
compiles to: a frozen ``CapabilitySet``, its stable dictionary form, and ``diff``.

The registry is data: the compiler (``caps.py``) validates against it, the API lists it,
and the sandbox reads the compiled set. Nothing here parses YAML.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# -- the registry ------------------------------------------------------------------------

TOOLS: dict[str, str] = {
    "shell": "Run a command with /bin/sh -c in the workspace, /data/work as the working "
             "directory; stdout and stderr come back, cut at limits.max_output_bytes.",
    "read_file": "Read a file under /data (uploads, work and the read-only packs).",
    "write_file": "Create or overwrite a file under /data/work or /data/uploads.",
    "list_files": "List a directory under /data, with sizes and modification times.",
}


@dataclass(frozen=True)
class LimitSpec:
    default: int
    minimum: int
    maximum: int
    unit: str
    description: str


LIMITS: dict[str, LimitSpec] = {
    "cpu_seconds": LimitSpec(60, 1, 3600, "seconds",
                             "CPU time one command may use before it is killed."),
    "wall_seconds": LimitSpec(300, 1, 86400, "seconds",
                              "Wall-clock time one command may run before it is killed."),
    "memory_mb": LimitSpec(1024, 64, 65536, "MiB",
                           "Memory (address space) one command may use."),
    "processes": LimitSpec(64, 1, 4096, "processes",
                           "Processes and threads the sandbox user may run at once."),
    "disk_mb": LimitSpec(5120, 16, 1048576, "MiB",
                         "How large /data/work and /data/uploads may grow together; also "
                         "the largest single file."),
    "max_output_bytes": LimitSpec(65536, 1024, 16777216, "bytes",
                                  "Bytes of one tool result kept for the model and the "
                                  "log; the rest is cut with a marker."),
}

NETWORK_MODES: dict[str, str] = {
    "none": "No network at all (the default).",
    "allowlist": "Only the listed hosts, through an egress proxy. Written as "
                 "`network: {allowlist: [api.github.com, \"*.pypi.org\"]}`. Until a sandbox "
                 "backend supports egress proxying, provisioning a workspace from such a "
                 "role fails with 409 network_policy_unsupported.",
}

CHECKPOINT_MODES: dict[str, str] = {
    "none": "Snapshots only when the workspace stops (the default).",
    "per_task": "Also a snapshot after every finished task.",
}

ENV_SOURCES: dict[str, str] = {
    "secret": "An org-wide secret, by name: `GITHUB_TOKEN: {secret: GITHUB_BOT_TOKEN}`.",
    "credential": "A credential, by name (the task submitter's own, else the org's): "
                  "`NPM_TOKEN: {credential: NPM}`.",
}

# Variables the sandbox sets itself, or that change how every program behaves.
RESERVED_ENV_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "PWD", "OLDPWD", "TMPDIR", "HOSTNAME",
    "TERM", "LANG", "IFS", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "PS4",
    "PROMPT_COMMAND", "PYTHONSTARTUP", "PYTHONPATH", "NODE_OPTIONS", "http_proxy",
    "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "no_proxy", "ALL_PROXY",
})
RESERVED_ENV_PREFIXES = ("LD_", "EVERSHELL_", "BASH_FUNC_", "DYLD_")

MAX_CAPS_BYTES = 64 * 1024

# What the console offers a new role: the usual tools, no network, default limits.
STARTER_CAPS = """\
# What this role's agent may do (GET /v1/capabilities lists all).
tools: [shell, read_file, write_file, list_files]
network: none
limits:
  cpu_seconds: 60
  memory_mb: 1024
checkpoints: none
"""


# How the sandbox backend enforces each limit on this host: set at start-up by the
# runtime (which sits above roles), read by ``registry``.
enforcement: Callable[[], dict[str, str]] = dict


def registry() -> dict[str, Any]:
    """Everything a caps.yaml may name, for ``GET /v1/capabilities`` and the console."""
    enforced = enforcement()
    return {
        "tools": [{"name": n, "description": d} for n, d in TOOLS.items()],
        "limits": [{"name": n, "default": s.default, "minimum": s.minimum,
                    "maximum": s.maximum, "unit": s.unit, "description": s.description,
                    "enforced_by": enforced.get(n, "not known on this server")}
                   for n, s in LIMITS.items()],
        "network_modes": [{"name": n, "description": d} for n, d in NETWORK_MODES.items()],
        "checkpoint_modes": [{"name": n, "description": d}
                             for n, d in CHECKPOINT_MODES.items()],
        "env_sources": [{"name": n, "description": d} for n, d in ENV_SOURCES.items()],
        "reserved_env_names": sorted(RESERVED_ENV_NAMES),
        "reserved_env_prefixes": list(RESERVED_ENV_PREFIXES),
        "max_bytes": MAX_CAPS_BYTES,
    }


# -- the compiled set --------------------------------------------------------------------

@dataclass(frozen=True)
class CapabilitySet:
    """A compiled caps.yaml. Immutable; collections are sorted tuples so two sets that
    mean the same thing compare (and serialise) equal."""

    tools: tuple[str, ...] = ()
    network_mode: str = "none"
    network_allowlist: tuple[str, ...] = ()
    limits: tuple[tuple[str, int], ...] = tuple(sorted(
        (name, spec.default) for name, spec in LIMITS.items()))
    env: tuple[tuple[str, str, str], ...] = ()  # (variable, source kind, source name)
    checkpoints: str = "none"

    def limit(self, name: str) -> int:
        return dict(self.limits)[name]

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON form: keys and lists sorted."""
        return {
            "checkpoints": self.checkpoints,
            "env": {var: {kind: name} for var, kind, name in self.env},
            "limits": dict(self.limits),
            "network": {"allowlist": list(self.network_allowlist), "mode": self.network_mode},
            "tools": list(self.tools),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CapabilitySet:
        """Rebuild a set from ``to_dict()`` output (as stored with a role version)."""
        env = []
        for var, source in data.get("env", {}).items():
            ((kind, name),) = source.items()
            env.append((var, kind, name))
        network = data.get("network", {})
        return cls(
            tools=tuple(sorted(data.get("tools", ()))),
            network_mode=network.get("mode", "none"),
            network_allowlist=tuple(sorted(network.get("allowlist", ()))),
            limits=tuple(sorted({**{n: s.default for n, s in LIMITS.items()},
                                 **data.get("limits", {})}.items())),
            env=tuple(sorted(env)),
            checkpoints=data.get("checkpoints", "none"),
        )


def diff(a: CapabilitySet | Mapping[str, Any], b: CapabilitySet | Mapping[str, Any]) \
        -> dict[str, list[dict[str, Any]]]:
    """What changed from ``a`` to ``b``, per path.

    Mappings are compared key by key (``limits.memory_mb``, ``env.GITHUB_TOKEN``); lists
    are sets, so a tool or host is ``added`` or ``removed`` under its list's path;
    anything else that differs is ``changed`` with ``from`` and ``to``. Entries are
    sorted by path, then value, so equal inputs always give the same answer.
    """
    before = a.to_dict() if isinstance(a, CapabilitySet) else dict(a)
    after = b.to_dict() if isinstance(b, CapabilitySet) else dict(b)
    result: dict[str, list[dict[str, Any]]] = {"added": [], "removed": [], "changed": []}
    _diff_into(result, "", before, after)
    for entries in result.values():
        entries.sort(key=lambda e: (e["path"], repr(e.get("value", e.get("from")))))
    return result


def _diff_into(result: dict, path: str, before: Any, after: Any) -> None:
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in sorted(set(before) | set(after)):
            sub = f"{path}.{key}" if path else key
            if key not in after:
                result["removed"].append({"path": sub, "value": before[key]})
            elif key not in before:
                result["added"].append({"path": sub, "value": after[key]})
            elif before[key] != after[key]:
                _diff_into(result, sub, before[key], after[key])
    elif isinstance(before, list) and isinstance(after, list):
        for value in after:
            if value not in before:
                result["added"].append({"path": path, "value": value})
        for value in before:
            if value not in after:
                result["removed"].append({"path": path, "value": value})
    else:
        result["changed"].append({"path": path, "from": before, "to": after})
