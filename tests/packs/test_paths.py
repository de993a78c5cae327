"""Path rules of pack files: what is accepted, how it is normalised, and every escape."""

from __future__ import annotations

import pytest

from evershell.packs.uploads import normalise_path


@pytest.mark.parametrize(("raw", "expected"), [
    ("a.md", "a.md"),
    ("docs/guide.md", "docs/guide.md"),
    ("./docs/./guide.md", "docs/guide.md"),
    ("docs//guide.md", "docs/guide.md"),
    ("C:x", None),  # a drive-relative Windows path
    ("dir with spaces/ünïcode.txt", "dir with spaces/ünïcode.txt"),
    ("cafe\u0301.md", "caf\u00e9.md"),  # NFD from macOS becomes NFC
    ("..foo/bar..", "..foo/bar.."),  # dots inside names are just names
    ("/".join(["d"] * 32), "/".join(["d"] * 32)),
    ("x" * 255, "x" * 255),
])
def test_accepted_paths_are_normalised(raw, expected):
    if expected is None:
        with pytest.raises(ValueError, match="absolute"):
            normalise_path(raw)
    else:
        assert normalise_path(raw) == expected


@pytest.mark.parametrize(("raw", "reason"), [
    ("", "empty name"),
    (None, "empty name"),
    ("../x", "'..' segment"),
    ("a/../../b", "'..' segment"),
    ("a/../b", "'..' segment"),  # stays inside, refused all the same
    ("..", "'..' segment"),
    ("/etc/passwd", "absolute"),
    ("//server/share", "absolute"),
    ("C:\\x", "backslash"),
    ("docs\\a.md", "backslash"),
    ("C:/Windows/x", "absolute"),
    ("a\x00b", "NUL"),
    ("a\nb", "control character"),
    ("a\x7fb", "control character"),
    ("docs/", "directory"),
    (".", "names no file"),
    ("./", "directory"),
    ("x" * 256, "longer than 255 bytes"),
    ("é" * 128, "longer than 255 bytes"),  # 256 bytes in UTF-8
    ("/".join(["d"] * 33), "deeper than 32"),
])
def test_refused_paths_say_why(raw, reason):
    with pytest.raises(ValueError, match=reason):
        normalise_path(raw)
