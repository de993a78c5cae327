"""The bubblewrap command line: what the sandbox sees, and nothing else of the host.

Visible: ``/usr`` (read-only, with the merged-/usr links), a small read-only ``/etc``,
a fresh ``/proc`` and minimal ``/dev``, a private ``/tmp``, and ``/data``. Not visible:
``/home``, ``/root``, ``/run`` and ``/var`` (so no PostgreSQL or Redis socket — unix
sockets ignore network namespaces), the host's ``/tmp``, the project, the instance
directory and every other workspace. The root is remounted read-only at the end, so only
``/data/uploads``, ``/data/work`` and ``/tmp`` can be written (``/dev`` is read-only too,
so there is no writable ``/dev/shm``; its device nodes still work).
"""

from __future__ import annotations

import os

# Read by libc, the dynamic linker, TLS and common tools; everything else in /etc stays out.
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime",
             "nsswitch.conf", "ssl", "ca-certificates", "mime.types", "python3",
             "bash.bashrc", "profile")
MERGED_USR = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
TMP_BYTES = 256 << 20


def etc_files(uid: int) -> list[tuple[int, str]]:
    """In-memory files for the sandbox's /etc: who ``uid`` is, and localhost.

    memfds rather than the host's /etc/passwd, which would list the host's accounts.
    """
    contents = {
        "/etc/passwd": f"root:x:0:0:root:/:/usr/sbin/nologin\n"
                       f"sandbox:x:{uid}:{uid}:sandbox:/data/work:/bin/sh\n"
                       f"nobody:x:65534:65534:nobody:/:/usr/sbin/nologin\n",
        "/etc/group": f"root:x:0:\nsandbox:x:{uid}:\nnogroup:x:65534:\n",
        "/etc/hosts": "127.0.0.1 localhost sandbox\n::1 localhost\n",
        "/etc/hostname": "sandbox\n",
    }
    files = []
    for dest, text in contents.items():
        fd = os.memfd_create("evershell-etc", os.MFD_CLOEXEC)
        os.write(fd, text.encode())
        os.lseek(fd, 0, os.SEEK_SET)
        files.append((fd, dest))
    return files


def bwrap_argv(bwrap: str, *, data_fd: int, uploads_fd: int, work_fd: int,
               etc: list[tuple[int, str]], cwd: str, command: str) -> list[str]:
    """The full bwrap command line for one exec of ``/bin/sh -c command``."""
    # --as-pid-1: the command is the namespace's init and bwrap waits for it itself;
    # bwrap's own reaper would outlive the exec as a zombie of the host's init, and
    # zombies count against the uid's RLIMIT_NPROC.
    argv = [bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session",
            "--disable-userns", "--as-pid-1", "--hostname", "sandbox",
            "--ro-bind", "/usr", "/usr"]
    for name in MERGED_USR:
        target = f"/{name}"
        if os.path.islink(target):
            argv += ["--symlink", os.readlink(target), target]
        elif os.path.isdir(target):
            argv += ["--ro-bind", target, target]
    argv += ["--proc", "/proc", "--dev", "/dev",
             "--size", str(TMP_BYTES), "--tmpfs", "/tmp", "--dir", "/etc"]
    for name in ETC_FILES:
        argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for fd, dest in etc:
        argv += ["--ro-bind-data", str(fd), dest]
    # /data read-only (so packs/ is), then its two writable areas bound over it.
    argv += ["--ro-bind-fd", str(data_fd), "/data",
             "--bind-fd", str(uploads_fd), "/data/uploads",
             "--bind-fd", str(work_fd), "/data/work",
             "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", cwd,
             "--", "/bin/sh", "-c", command]
    return argv
