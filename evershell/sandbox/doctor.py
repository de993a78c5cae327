"""What enforces each limit on this host, and whether the sandbox can run here at all.

``report()`` feeds ``evershell doctor``; ``check_host()`` is what the worker calls at
start-up, so a host without bubblewrap, user namespaces or the cgroup controllers refuses
to start with a message naming the package or setting, instead of running commands
unconfined.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from evershell.sandbox import cgroups, paths
from evershell.sandbox.backend import HostNotReady

PROBE_UID = 65534  # nobody: the probe needs any unprivileged uid, never a workspace's

Item = tuple[str, str, bool]


def _bwrap() -> Item:
    path = shutil.which("bwrap")
    if path is None:
        return ("bubblewrap", "bwrap not found: install the Debian package 'bubblewrap' "
                              "(apt-get install bubblewrap)", False)
    version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
    return ("bubblewrap", f"{version.strip() or 'bwrap'} at {path}", True)


def _user_namespaces(bwrap_ok: bool) -> Item:
    if not bwrap_ok:
        return ("user namespaces", "not checked: bubblewrap is missing", False)
    if os.geteuid() != 0:
        return ("user namespaces", "not checked: the worker must run as root to switch "
                                   "to workspace uids", False)

    def drop() -> None:
        os.setgroups([])
        os.setresgid(PROBE_UID, PROBE_UID, PROBE_UID)
        os.setresuid(PROBE_UID, PROBE_UID, PROBE_UID)

    probe = subprocess.run(
        ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
         "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib",
         "/lib", "--symlink", "usr/lib64", "/lib64", "--", "/bin/true"],
        capture_output=True, text=True, preexec_fn=drop, cwd="/", timeout=30)
    if probe.returncode == 0:
        return ("user namespaces", "unprivileged bwrap works (the sandbox runs as the "
                                   "workspace's host uid)", True)
    hint = ("set sysctl user.max_user_namespaces above 0 "
            "(and kernel.unprivileged_userns_clone=1 on Debian kernels, "
            "kernel.apparmor_restrict_unprivileged_userns=0 where AppArmor restricts it)")
    return ("user namespaces", f"unprivileged bwrap failed ({probe.stderr.strip()}): {hint}",
            False)


def _limit_mechanisms(version: int | None, missing: tuple[str, ...]) -> list[Item]:
    if version == 2:
        cpu_controller = "cpu"
        memory = "cgroup v2 memory.max (OOM kill); peak from memory.peak"
        cpu = "cgroup v2 cpu.stat usage_usec, polled, + RLIMIT_CPU"
        pids, kill = "cgroup v2 pids.max", "cgroup v2 cgroup.kill"
    else:
        cpu_controller = "cpuacct"
        memory = ("cgroup v1 memory.limit_in_bytes + memory.memsw.limit_in_bytes (OOM kill); "
                  "peak from memory.max_usage_in_bytes")
        cpu = "cgroup v1 cpuacct.usage, polled, + RLIMIT_CPU"
        pids = "cgroup v1 pids.max"
        kill = "cgroup v1 freezer, then SIGKILL to every pid, until the group is empty"

    def needs(controller: str, item: str, mechanism: str) -> Item:
        if version is not None and controller not in missing:
            return (item, mechanism, True)
        return (item, f"cgroup controller '{controller}' unavailable: enable it in the "
                      "kernel (cgroup_enable=) or mount its hierarchy", False)

    return [
        needs("memory", "memory", memory),
        needs(cpu_controller, "cpu", cpu),
        ("wall", "timer in the exec loop, then the whole group is killed", True),
        needs("pids", "processes", f"{pids} + RLIMIT_NPROC of the workspace's uid"),
        ("disk", "RLIMIT_FSIZE + a usage check of /data during and after each exec", True),
        ("output", "cut at max_output_bytes by the exec loop, with a marker", True),
        needs("freezer" if version == 1 else "pids", "cancel", kill),
    ]


# caps.yaml limit → the doctor's item that enforces it.
_LIMIT_ITEMS = {"cpu_seconds": "cpu", "wall_seconds": "wall", "memory_mb": "memory",
                "processes": "processes", "disk_mb": "disk", "max_output_bytes": "output"}


def enforcement() -> dict[str, str]:
    """How each caps.yaml limit is enforced on this host (no probes: reads the cgroup
    layout only), for ``GET /v1/capabilities``."""
    support = cgroups.detect()
    rows = {item: (mechanism if ok else f"NOT ENFORCED here: {mechanism}")
            for item, mechanism, ok in _limit_mechanisms(support.version, support.missing)}
    return {limit: rows[item] for limit, item in _LIMIT_ITEMS.items()}


def report() -> list[Item]:
    """(item, mechanism or problem, ok) for everything the local backend relies on."""
    bwrap = _bwrap()
    support = cgroups.detect()
    cgroup_row = ("cgroups", f"cgroup v{support.version}" + (
        f" (missing: {', '.join(support.missing)})" if support.missing else ""),
        support.version is not None and not support.missing)
    if support.version is None:
        cgroup_row = ("cgroups", "no cgroup v2 controllers and no v1 memory/pids/cpuacct "
                                 "hierarchies under /sys/fs/cgroup", False)
    resolve = ("file access", "openat2 RESOLVE_IN_ROOT under the workspace directory"
               if paths.openat2_available() else
               "no openat2 (Linux < 5.6): component walk that refuses every symlink", True)
    return [bwrap, _user_namespaces(bwrap[2]), cgroup_row,
            *_limit_mechanisms(support.version, support.missing),
            ("network", "none: a fresh network namespace with only lo", bwrap[2]),
            ("zstd", "zstandard (Python) for snapshot archives", _has_zstandard()), resolve]


def _has_zstandard() -> bool:
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return False
    return True


def check_host(sandbox_root: Path | None = None) -> None:
    """Raise HostNotReady naming every missing package or setting; the worker calls this
    before taking jobs."""
    problems = [f"{item}: {detail}" for item, detail, ok in report() if not ok]
    if sandbox_root is not None:
        for parent in Path(sandbox_root).resolve().parents:
            if not parent.stat().st_mode & 0o001:
                problems.append(f"sandbox root: {parent} is not searchable by other users "
                                "(chmod o+x it, or choose another root)")
                break
    if problems:
        raise HostNotReady("this host cannot run sandboxes:\n  " + "\n  ".join(problems))
