"""Turning workspace files into tool output: ``read_file`` text, ``list_files`` listings.

Both are redacted here rather than after cutting, so an output limit or a line offset
never shows part of a secret value: a value crossing the edge of what is shown is
replaced whole (the text on either side is read as context for that).
"""

from __future__ import annotations

import io
from typing import BinaryIO

from evershell.sandbox import FileEntry
from evershell.secrets.redaction import Redactor

READ_CHUNK = 64 * 1024


def read_text(handle: BinaryIO, *, offset: int, limit: int | None, max_bytes: int,
              redactor: Redactor) -> str:
    """Lines ``offset``… (1-based, at most ``limit``) of a file as UTF-8 text (bad bytes
    replaced), redacted, cut at ``max_bytes`` with a marker saying where to read on."""
    text = io.TextIOWrapper(handle, encoding="utf-8", errors="replace", newline="")
    context = redactor.longest
    line, before, partial = 1, "", False
    while line < offset:
        piece = text.readline(READ_CHUNK)
        if not piece:
            text.detach()
            return f"[the file has no line {offset}: it has {line - 1 + partial} lines]"
        before = (before + piece)[-context:] if context else ""
        partial = not piece.endswith("\n")
        line += not partial
    taken: list[str] = []
    size = lines = 0
    rest, cut = "", False
    while limit is None or lines < limit:
        piece = text.readline(READ_CHUNK)
        if not piece:
            break
        encoded = piece.encode()
        if size + len(encoded) > max_bytes:
            part = encoded[:max_bytes - size].decode("utf-8", "ignore")
            taken.append(part)
            rest, cut = piece[len(part):], True
            break
        taken.append(piece)
        size += len(encoded)
        lines += piece.endswith("\n")
    body = "".join(taken)
    after = (rest + text.read(context)) if context else ""
    text.detach()  # the caller closes the file
    shown = redactor.redact_part(before + body + after, len(before), len(before) + len(body))
    if cut:
        shown += (f"\n[output truncated: more than {max_bytes} bytes; read on with "
                  f"offset={offset + lines}]\n")
    return shown


def list_directory(entries: list[FileEntry], *, max_bytes: int, redactor: Redactor) -> str:
    """One line per entry (type, size, path, link target), redacted, cut at whole lines
    when longer than ``max_bytes``."""
    if not entries:
        return "(empty directory)"
    out: list[str] = []
    size = 0
    for index, entry in enumerate(entries):
        line = f"{entry.type:<7} {entry.size:>12}  {entry.path}"
        if entry.type == "dir":
            line += "/"
        if entry.target is not None:
            line += f" -> {entry.target}"
        line = redactor.redact(line) + "\n"
        if size + len(line.encode()) > max_bytes:
            out.append(f"[listing truncated at {max_bytes} bytes: "
                       f"{len(entries) - index} more entries]\n")
            break
        out.append(line)
        size += len(line.encode())
    return "".join(out)
