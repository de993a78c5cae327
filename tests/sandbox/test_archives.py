"""Snapshot archives: byte-for-byte round trips, and refusal of unsafe archives."""

from __future__ import annotations

import io
import os
import stat
import tarfile

import pytest
import zstandard

from evershell.sandbox import ArchiveRefused, Limits
from evershell.sandbox.archives import file_sha256

TREE = r"""
mkdir -p a/b/c empty/nested uploads_dir; head -c 300000 /dev/urandom > a/b/c/blob
printf 'text\n' > a/t.txt; chmod 640 a/t.txt; printf '#!/bin/sh\n' > run.sh; chmod 755 run.sh
chmod 700 a/b; chmod 2750 empty/nested; ln -s a/t.txt rel; ln -s /etc/passwd abs
ln -s ../../../outside escape; ln -s missing dangling; ln a/t.txt hard; mkfifo fifo
touch -d 2020-01-02T03:04:05 a/t.txt; echo up > /data/uploads/u.txt
"""


def _tree(root):
    """Everything round trips are compared on: type, mode, size, mtime, content, target."""
    seen = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(top, name)
            info = os.lstat(path)
            detail = (os.readlink(path) if stat.S_ISLNK(info.st_mode) else
                      open(path, "rb").read() if stat.S_ISREG(info.st_mode) else None)
            mtime = None if stat.S_ISDIR(info.st_mode) else int(info.st_mtime)
            seen[os.path.relpath(path, root)] = (info.st_mode, detail, mtime, info.st_nlink)
    return seen


def test_snapshot_restore_round_trip(backend, workspace, uid, tmp_path):
    result = backend.exec(workspace, uid, TREE, env={}, limits=Limits())
    assert result.exit_code == 0, result.output
    archive = backend.snapshot(workspace, tmp_path)
    assert archive.sha256 == file_sha256(open(archive.path, "rb"))
    assert archive.size == archive.path.stat().st_size
    before = _tree(backend.live_path(workspace))
    backend.restore("ws-restored", uid + 1, archive.path, archive.sha256, [])
    try:
        live = backend.live_path("ws-restored")
        after = _tree(live)
        assert {k: v for k, v in after.items() if not k.startswith("packs")} == {
            k: v for k, v in before.items() if not k.startswith("packs")}
        owners = {os.lstat(os.path.join(t, n)).st_uid
                  for t, d, f in os.walk(live / "work") for n in d + f}
        assert owners == {uid + 1}
    finally:
        backend.destroy("ws-restored")


def test_a_tampered_archive_is_refused_before_unpacking(backend, workspace, uid, tmp_path):
    backend.write_file(workspace, uid, "f", b"x")
    archive = backend.snapshot(workspace, tmp_path)
    with open(archive.path, "r+b") as handle:
        handle.seek(-1, os.SEEK_END)
        last = handle.read(1)
        handle.seek(-1, os.SEEK_END)
        handle.write(bytes([last[0] ^ 1]))
    with pytest.raises(ArchiveRefused, match="hash"):
        backend.restore("ws-tampered", uid, archive.path, archive.sha256, [])
    assert not backend.is_live("ws-tampered")
    backend.destroy("ws-tampered")


def _archive(tmp_path, members):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, extra in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = extra
            data = extra.encode() if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "crafted.tar.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(raw.getvalue()))
    return path, file_sha256(open(path, "rb"))


@pytest.mark.parametrize("members", [
    [("work/../../escape", tarfile.REGTYPE, "x")],
    [("../escape", tarfile.REGTYPE, "x")],
    [("/etc/evil", tarfile.REGTYPE, "x")],
    [("packs/x", tarfile.REGTYPE, "x")],
    [("work/dev", tarfile.CHRTYPE, "")],
    [("work/l", tarfile.SYMTYPE, "/tmp"), ("work/l/x", tarfile.REGTYPE, "x")],
    [("work/h", tarfile.LNKTYPE, "/etc/passwd")],
    [("work/h", tarfile.LNKTYPE, "work/../../x")],
], ids=["dotdot-inside", "dotdot", "absolute", "packs", "device", "through-link",
        "hardlink-absolute", "hardlink-out"])
def test_unsafe_members_are_refused(backend, uid, tmp_path, members):
    path, digest = _archive(tmp_path, members)
    with pytest.raises(ArchiveRefused):
        backend.restore("ws-unsafe", uid, path, digest, [])
    assert not backend.is_live("ws-unsafe")
    assert not os.path.exists("/tmp/x") and not os.path.exists("/etc/evil")
    backend.destroy("ws-unsafe")
