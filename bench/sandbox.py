"""The local sandbox backend against bubblewrap and tar|zstd, measured in the same run.

- provision (``materialise``) and one ``true`` exec, each ÷ a bare
  ``bwrap --unshare-all -- true`` (with just /usr bound, so ``true`` can run);
- snapshot and restore of a 200 MB ``/data`` (half random, half compressible) ÷
  ``tar -C dir -cf - . | zstd`` and ``zstd -dc | tar -xf -`` of the same tree.

    .venv/bin/python bench/sandbox.py [ROUNDS]      (as root; prints min and median)

No thresholds, no assertions.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evershell.sandbox import Limits  # noqa: E402
from evershell.sandbox.local import LocalBackend  # noqa: E402

UID = 3_990_001
BARE = ["bwrap", "--unshare-all", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
        "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--", "true"]


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def fill(work: Path, megabytes: int = 200) -> None:
    """Half random bytes, half repetitive text, in 1 MB files over a few directories."""
    chunk = (b"evershell sandbox benchmark line\n" * 32000)[: 1 << 20]
    for i in range(megabytes):
        folder = work / f"d{i % 10}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{i}").write_bytes(os.urandom(1 << 20) if i % 2 else chunk)
    os.system(f"chown -R {UID}:{UID} {work}")


def report(name: str, ours: list[float], floor: list[float]) -> None:
    print(f"{name:<22} ours min {min(ours) * 1000:8.1f} ms  median "
          f"{statistics.median(ours) * 1000:8.1f} ms | floor min {min(floor) * 1000:8.1f} ms"
          f" | ratio min {min(ours) / min(floor):5.2f}  median "
          f"{statistics.median(ours) / statistics.median(floor):5.2f}")


def main(rounds: int) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="evershell-bench-"))
    scratch.chmod(0o711)
    backend = LocalBackend(scratch / "sandboxes", cgroup_parent="evershell-bench")
    try:
        bare = [timed(lambda: subprocess.run(BARE, check=True)) for _ in range(rounds * 2)]
        provision = [timed(lambda i=i: backend.materialise(f"p{i}", UID, []))
                     for i in range(rounds * 2)]
        run = [timed(lambda: backend.exec("p0", UID, "true", env={}, limits=Limits()))
               for _ in range(rounds * 2)]
        report("provision", provision, bare)
        report("exec true", run, bare)

        fill(backend.live_path("p0") / "work")
        out = scratch / "archives"
        snaps, restores, tars, untars = [], [], [], []
        live = backend.live_path("p0")
        plain = scratch / "plain.tar.zst"
        for i in range(rounds):
            clock = time.perf_counter()
            archive = backend.snapshot("p0", out)
            snaps.append(time.perf_counter() - clock)
            clock = time.perf_counter()
            backend.restore(f"r{i}", UID, archive.path, archive.sha256, [])
            restores.append(time.perf_counter() - clock)
            clock = time.perf_counter()
            subprocess.run(f"tar -C {live} -cf - uploads work | zstd -q -f -o {plain}",
                           shell=True, check=True)
            tars.append(time.perf_counter() - clock)
            dest = scratch / f"untar{i}"
            dest.mkdir()
            clock = time.perf_counter()
            subprocess.run(f"zstd -dc {plain} | tar -C {dest} -xf -", shell=True, check=True)
            untars.append(time.perf_counter() - clock)
            backend.destroy(f"r{i}")
            shutil.rmtree(dest)
        print(f"archive: ours {archive.size >> 20} MB, tar|zstd "
              f"{(scratch / 'plain.tar.zst').stat().st_size >> 20} MB")
        report("snapshot 200 MB", snaps, tars)
        report("restore 200 MB", restores, untars)
    finally:
        for child in (scratch / "sandboxes").glob("[!.]*"):
            backend.destroy(child.name)
        shutil.rmtree(scratch)
        for hierarchy in ("memory", "pids", "cpuacct", "freezer"):
            path = Path("/sys/fs/cgroup") / hierarchy / "evershell-bench"
            if path.is_dir():
                path.rmdir()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
