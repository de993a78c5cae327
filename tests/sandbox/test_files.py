"""Listing, reading and writing files under /data: never out through a link."""

from __future__ import annotations

import os

import pytest

from evershell.sandbox import Limits, PackMount, PathNotFound, PathRefused


def sh(backend, workspace, uid, command):
    result = backend.exec(workspace, uid, command, env={}, limits=Limits(wall_seconds=20))
    assert result.exit_code == 0, result.output
    return result


def test_write_list_and_read(backend, workspace, uid):
    backend.write_file(workspace, uid, "notes/a.txt", b"hello")
    backend.write_file(workspace, uid, "/data/uploads/in.bin", b"\0\1")
    sh(backend, workspace, uid, "ln -s a.txt notes/link; mkdir notes/empty")
    entries = {e.name: e for e in backend.list_files(workspace, "notes")}
    assert entries["a.txt"].type == "file" and entries["a.txt"].size == 5
    assert entries["a.txt"].path == "/data/work/notes/a.txt"
    assert entries["link"].type == "symlink" and entries["link"].target == "a.txt"
    assert entries["empty"].type == "dir"
    assert os.stat(backend.live_path(workspace) / "work/notes/a.txt").st_uid == uid
    with backend.open_file(workspace, "/data/work/notes/link") as handle:
        assert handle.read() == b"hello"
    assert [e.name for e in backend.list_files(workspace, "/data")] == [
        "packs", "uploads", "work"]


@pytest.mark.parametrize("target", ["/etc", "/etc/passwd", "../../../../../../etc/passwd",
                                    "/proc/self/root/etc/passwd"])
def test_links_out_of_data_are_refused(backend, workspace, uid, target):
    sh(backend, workspace, uid, f"ln -s {target} out")
    with pytest.raises((PathRefused, PathNotFound)):
        backend.open_file(workspace, "out").read()
    with pytest.raises((PathRefused, PathNotFound)):
        backend.list_files(workspace, "out")
    with pytest.raises(PathRefused):
        backend.write_file(workspace, uid, "out/x", b"no")


def test_paths_outside_data_are_refused(backend, workspace, uid):
    for path in ("/etc/passwd", "../../etc/passwd", "/data/../etc", "/"):
        with pytest.raises(PathRefused):
            backend.list_files(workspace, path)
        with pytest.raises(PathRefused):
            backend.write_file(workspace, uid, path, b"x")


def test_packs_are_read_only(backend, uid, tmp_path):
    (tmp_path / "pack").mkdir()
    (tmp_path / "pack" / "tool.sh").write_text("echo tool\n")
    backend.materialise("ws-packs", uid, [PackMount("tools", tmp_path / "pack")])
    try:
        with pytest.raises(PathRefused):
            backend.write_file("ws-packs", uid, "/data/packs/tools/tool.sh", b"x")
        result = backend.exec("ws-packs", uid, "sh /data/packs/tools/tool.sh; "
                              "echo x > /data/packs/tools/tool.sh", env={}, limits=Limits())
        assert result.output.startswith(b"tool\n") and result.exit_code != 0
        assert (tmp_path / "pack" / "tool.sh").read_text() == "echo tool\n"
    finally:
        backend.destroy("ws-packs")


def test_a_fifo_is_not_opened_and_a_link_is_not_written_through(backend, workspace, uid):
    sh(backend, workspace, uid, "mkfifo pipe; echo keep > real; ln -s real alias")
    with pytest.raises(PathNotFound):
        backend.open_file(workspace, "pipe")
    with pytest.raises(PathRefused):
        backend.write_file(workspace, uid, "alias", b"changed")
    with backend.open_file(workspace, "real") as handle:
        assert handle.read() == b"keep\n"
