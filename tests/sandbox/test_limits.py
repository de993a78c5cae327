"""Each limit does what caps.yaml says and is named in the result; cancel leaves nothing."""

from __future__ import annotations

import threading

from evershell.sandbox import Limits, cgroups
from evershell.sandbox.execution import truncation_marker
from tests.sandbox.conftest import processes_of


def run(backend, workspace, uid, command, **limits):
    return backend.exec(workspace, uid, command, env={},
                        limits=Limits(**{"wall_seconds": 20, **limits}))


def test_a_plain_command_reports_its_use(backend, workspace, uid):
    result = run(backend, workspace, uid, "echo $HOME; echo err >&2; exit 3",
                 memory_mb=64)
    assert (result.exit_code, result.limit, result.cancelled) == (3, None, False)
    assert result.output == b"/data/work\nerr\n"
    assert result.cpu_seconds > 0 and 0 < result.peak_memory_bytes <= 64 << 20


def test_memory_is_an_oom_kill(backend, workspace, uid):
    result = run(backend, workspace, uid, "python3 -c 'b = b\"a\" * (200 << 20)'",
                 memory_mb=64)
    assert result.limit == "memory" and result.exit_code != 0
    assert result.peak_memory_bytes <= 64 << 20


def test_cpu_time_is_killed(backend, workspace, uid):
    result = run(backend, workspace, uid, "while :; do :; done", cpu_seconds=1)
    assert result.limit == "cpu" and 0.9 <= result.cpu_seconds < 2.5


def test_wall_clock_is_killed(backend, workspace, uid):
    result = run(backend, workspace, uid, "sleep 30", wall_seconds=1)
    assert result.limit == "wall" and result.duration_seconds < 3


def test_process_limit_refuses_forks(backend, workspace, uid):
    result = run(backend, workspace, uid,
                 "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait; echo survived",
                 processes=4)
    assert result.limit == "processes"
    assert b"fork" in result.output.lower()


def test_a_file_larger_than_disk_mb_is_cut(backend, workspace, uid):
    result = run(backend, workspace, uid, "head -c 40000000 /dev/zero > big; wc -c < big",
                 disk_mb=16)
    assert result.limit == "disk"
    assert result.output.split()[-1] == str(16 << 20).encode()


def test_disk_use_over_disk_mb_is_killed(backend, workspace, uid):
    result = run(backend, workspace, uid,
                 "for i in 1 2 3; do head -c 8000000 /dev/urandom > f$i; done; sleep 20",
                 disk_mb=16)
    assert result.limit == "disk" and result.duration_seconds < 5


def test_output_is_cut_with_a_marker_while_the_command_runs_on(backend, workspace, uid):
    streamed: list[bytes] = []
    result = backend.exec(workspace, uid, "head -c 5000 /dev/zero | tr '\\0' a; echo; "
                          "echo ran-on > ran-on", env={}, limits=Limits(max_output_bytes=1024),
                          on_output=streamed.append)
    assert result.limit == "output" and result.output_truncated and result.exit_code == 0
    assert result.output == b"a" * 1024 + truncation_marker(1024)
    assert b"".join(streamed) == result.output and result.output_bytes_total == 5001
    with backend.open_file(workspace, "ran-on") as handle:
        assert handle.read() == b"ran-on\n"


def test_cancel_kills_the_whole_tree(backend, workspace, uid):
    cancel = threading.Event()
    started = threading.Event()

    def on_output(chunk: bytes) -> None:
        started.set()

    threading.Thread(target=lambda: started.wait(10) and cancel.set()).start()
    result = backend.exec(
        workspace, uid, "sleep 60 & (sleep 60 & sleep 60) & setsid sleep 60 & echo up; wait",
        env={}, limits=Limits(wall_seconds=30), on_output=on_output, cancel=cancel)
    assert result.cancelled and result.limit is None and result.duration_seconds < 10
    assert processes_of(uid) == []
    assert cgroups.groups_of(backend.cgroup_parent, workspace) == []


def test_destroy_kills_a_running_exec(backend, uid):
    backend.materialise("ws-destroy", uid, [])
    results, up = [], threading.Event()
    worker = threading.Thread(target=lambda: results.append(backend.exec(
        "ws-destroy", uid, "echo up; sleep 60", env={}, limits=Limits(wall_seconds=20),
        on_output=lambda chunk: up.set())))
    worker.start()
    assert up.wait(10)
    backend.destroy("ws-destroy")
    worker.join(10)
    assert not worker.is_alive() and results[0].cancelled and results[0].limit is None
    assert processes_of(uid) == [] and not backend.is_live("ws-destroy")
