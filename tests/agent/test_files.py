"""``read_file`` and ``list_files`` output: line offsets, limits, cuts with markers."""

from __future__ import annotations

import io

from evershell.agent.files import list_directory, read_text
from evershell.sandbox import FileEntry
from evershell.secrets.redaction import Redactor

TEXT = "".join(f"line {n}\n" for n in range(1, 101)).encode()


def read(data: bytes, **kwargs) -> str:
    options = {"offset": 1, "limit": None, "max_bytes": 1 << 16, "redactor": Redactor({})}
    return read_text(io.BytesIO(data), **{**options, **kwargs})


def test_lines_are_read_from_an_offset_up_to_a_limit():
    assert read(TEXT, offset=3, limit=2) == "line 3\nline 4\n"
    assert read(TEXT) == TEXT.decode()
    assert read(TEXT, offset=500) == "[the file has no line 500: it has 100 lines]"
    assert read(b"a\nb", offset=3) == "[the file has no line 3: it has 2 lines]"
    assert read(b"caf\xc3\xa9 \xff\n") == "café \ufffd\n"


def test_a_long_read_is_cut_with_where_to_read_on():
    out = read(TEXT, offset=10, max_bytes=30)
    assert out.startswith("line 10\nline 11\nline 12\nline 1")
    assert out.endswith("[output truncated: more than 30 bytes; read on with offset=13]\n")


def test_a_listing_is_cut_at_whole_entries():
    entries = [FileEntry(name=f"f{n}", path=f"/data/work/f{n}", type="file", size=n,
                         mode=0o644, mtime=0.0) for n in range(50)]
    entries.append(FileEntry(name="l", path="/data/work/l", type="symlink", size=1,
                             mode=0o777, mtime=0.0, target="/etc"))
    full = list_directory(entries, max_bytes=1 << 16, redactor=Redactor({}))
    assert full.splitlines()[0] == "file               0  /data/work/f0"
    assert full.splitlines()[-1].endswith("/data/work/l -> /etc")
    cut = list_directory(entries, max_bytes=200, redactor=Redactor({}))
    assert cut.endswith("[listing truncated at 200 bytes: 46 more entries]\n")
    assert list_directory([], max_bytes=10, redactor=Redactor({})) == "(empty directory)"
