"""Multipart bodies with thousands of file parts, on one open file.

Werkzeug gives every file part of a large body its own temporary file, so a directory
upload of a few thousand files would hold as many descriptors open until the request
ends (and fail against a 1,024 limit). For the packs routes every part is written back
to back into one shared temporary file instead, each part a window onto it: one
descriptor, nothing held in memory. Werkzeug writes the parts one after the other, so
only the newest window is ever written to.
"""

from __future__ import annotations

import io
import tempfile

from flask import Request, g

from evershell.packs import uploads

# Form fields besides the files (name, description, csrf_token, …).
_EXTRA_PARTS = 16


class _Spool:
    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile()
        self.end = 0


class SpooledPart(io.RawIOBase):
    """One part's bytes: a readable, seekable window of the shared file."""

    def __init__(self, spool: _Spool) -> None:
        super().__init__()
        self._spool = spool
        self._start = spool.end
        self._length = 0
        self._pos = 0

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self._start + self._length != self._spool.end:
            raise OSError("only the newest part of a multipart body can be written")
        self._spool.file.seek(self._spool.end)
        written = self._spool.file.write(data)
        self._length += written
        self._spool.end += written
        return written

    def readinto(self, buffer) -> int:
        wanted = min(len(buffer), self._length - self._pos)
        if wanted <= 0:
            return 0
        self._spool.file.seek(self._start + self._pos)
        got = self._spool.file.readinto(memoryview(buffer)[:wanted])
        self._pos += got
        return got

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


def install(request: Request) -> None:
    """Before the body is parsed: spool file parts into one file, and accept as many
    parts as a pack version may have files (more is werkzeug's 413)."""
    spool = _Spool()
    g.packs_spool = spool

    def stream_factory(total_content_length, content_type, filename=None,
                       content_length=None) -> SpooledPart:
        return SpooledPart(spool)

    # Werkzeug documents _get_file_stream as the hook for where file parts go; set on
    # this request only, so other routes keep the default.
    request._get_file_stream = stream_factory
    request.max_form_parts = uploads.limits().max_files + _EXTRA_PARTS


def release() -> None:
    """After the request: the shared file goes (the OS deletes it on close)."""
    spool = g.pop("packs_spool", None)
    if spool is not None:
        spool.file.close()
