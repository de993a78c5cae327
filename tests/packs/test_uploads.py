"""Uploads refused as a whole, naming the path: traversal and escapes in file parts and in
archives, links and devices, duplicates, limits, malformed bodies. Nothing of a refused
upload is recorded."""

from __future__ import annotations

import io
import tarfile

import pytest
import sqlalchemy as sa

from evershell.packs.models import Pack, PackBlob
from tests.packs.conftest import (
    URL,
    error_of,
    raw_multipart,
    tar_bytes,
    tar_link,
    upload,
    zip_bytes,
)


def refused_paths(response, field="files") -> dict:
    assert error_of(response) == (400, "validation_error"), response.get_json()
    return response.get_json()["error"]["details"]["fields"][field]


def assert_nothing_recorded(session, org):
    assert session.scalar(sa.select(sa.func.count()).select_from(Pack).where(
        Pack.org_id == org.id)) == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(PackBlob).where(
        PackBlob.org_id == org.id)) == 0


@pytest.mark.parametrize(("path", "reason"), [
    ("../x", "'..' segment"),
    ("a/../../b", "'..' segment"),
    ("/etc/passwd", "absolute"),
    ("docs/", "directory"),
])
def test_escaping_file_parts_are_refused_by_path(client, headers, session, org, path, reason):
    response = upload(client, headers, "docs", files={"ok.md": b"fine", path: b"evil"})
    problems = refused_paths(response)
    assert list(problems) == [path] and reason in problems[path][0]
    assert path in response.get_json()["error"]["message"]
    assert_nothing_recorded(session, org)


@pytest.mark.parametrize(("raw_filename", "shown", "reason"), [
    (rb"C:\\x", "C:\\x", "backslash"),  # a quoted-string escape: the server sees C:\x
    (rb"docs\\a.md", "docs\\a.md", "backslash"),
    (b"C:x", "C:x", "absolute"),
    (b"", "", "empty name"),
])
def test_filenames_exactly_as_sent(client, headers, raw_filename, shown, reason):
    body, content_type = raw_multipart({"name": "docs"}, [("files", raw_filename, b"x")])
    response = client.post(URL, data=body, content_type=content_type, headers=headers)
    problems = refused_paths(response)
    assert list(problems) == [shown] and reason in problems[shown][0]


def test_every_refused_path_is_reported_at_once(client, headers):
    response = upload(client, headers, "docs", files={"../a": b"1", "/b": b"2", "c": b"3"})
    assert set(refused_paths(response)) == {"../a", "/b"}
    assert "(and 1 more refused path)" in response.get_json()["error"]["message"]


def test_duplicates_and_file_directory_clashes(client, headers):
    response = upload(client, headers, "docs",
                      files=[("a.md", b"1"), ("./a.md", b"2"), ("docs", b"3"),
                             ("docs/x.md", b"4")])
    problems = refused_paths(response)
    assert problems["a.md"] == ["appears more than once"]
    assert problems["docs"] == ["is both a file and a directory"]


def test_empty_uploads_and_both_kinds_at_once(client, headers):
    assert refused_paths(upload(client, headers, "docs", files={})) == \
        ["The upload holds no files."]
    response = upload(client, headers, "docs", files={"a": b"1"},
                      archive=tar_bytes([("b", b"2")]))
    assert refused_paths(response, "archive") == ["Send files or one archive, not both."]


def test_parts_without_filenames_and_unknown_parts(client, headers):
    body, content_type = raw_multipart({"name": "docs", "files": "not a file"}, [])
    response = client.post(URL, data=body, content_type=content_type, headers=headers)
    assert "files" in response.get_json()["error"]["details"]["fields"]
    body, content_type = raw_multipart({"name": "docs"}, [("file", b"a.md", b"x")])
    response = client.post(URL, data=body, content_type=content_type, headers=headers)
    assert error_of(response) == (400, "validation_error")
    assert response.get_json()["error"]["details"]["fields"]["file"] == [
        "Unknown file part; send `files` or `archive`."]


def test_an_empty_nameless_part_is_a_file_input_left_empty(client, headers):
    body, content_type = raw_multipart({"name": "docs"}, [("files", b"a.md", b"x"),
                                                          ("archive", b"", b"")])
    response = client.post(URL, data=body, content_type=content_type, headers=headers)
    assert response.status_code == 201, response.get_json()


# -- archives ------------------------------------------------------------------------------

@pytest.mark.parametrize(("member", "reason"), [
    (tar_link("link", "/etc/passwd"), "symbolic link"),
    (tar_link("inside", "README.md"), "symbolic link"),  # even a harmless one
    (tar_link("hard", "/etc/shadow", tarfile.LNKTYPE), "hard link"),
    (tar_link("dev", "", tarfile.CHRTYPE), "device"),
    (tar_link("blk", "", tarfile.BLKTYPE), "device"),
    (tar_link("fifo", "", tarfile.FIFOTYPE), "FIFO"),
    (("../escape.txt", b"x"), "'..' segment"),
    (("/etc/cron.d/job", b"x"), "absolute"),
    (("a/../../b", b"x"), "'..' segment"),
    (("docs\\a.md", b"x"), "backslash"),
])
def test_tar_entries_that_are_not_plain_files_inside_are_refused(
        client, headers, session, org, member, reason):
    archive = tar_bytes([("README.md", b"ok"), member], compression="gz")
    problems = refused_paths(upload(client, headers, "docs", archive=archive), "archive")
    (path, reasons), = problems.items()
    assert reason in reasons[0]
    assert_nothing_recorded(session, org)


def test_tar_directory_entries_that_escape_are_refused(client, headers):
    directory = tarfile.TarInfo("../outside")
    directory.type = tarfile.DIRTYPE
    problems = refused_paths(upload(client, headers, "docs",
                                    archive=tar_bytes([("a", b"1"), directory])), "archive")
    assert list(problems) == ["../outside"]


def test_plain_tar_with_directories_and_duplicates(client, headers):
    directory = tarfile.TarInfo("docs")
    directory.type = tarfile.DIRTYPE
    ok = upload(client, headers, "docs", archive=tar_bytes([directory, ("docs/a", b"1")]))
    assert ok.status_code == 201 and ok.get_json()["latest"]["file_count"] == 1
    twice = upload(client, headers, "other", archive=tar_bytes([("a", b"1"), ("./a", b"2")]))
    assert refused_paths(twice, "archive") == {"a": ["appears more than once"]}


@pytest.mark.parametrize(("member", "reason"), [
    (("link", b"/etc/passwd", 0o120777), "symbolic link"),
    (("dev", b"", 0o020644), "device"),
    (("../up.txt", b"x"), "'..' segment"),
    (("/abs.txt", b"x"), "absolute"),
    (("C:\\win.txt", b"x"), "backslash"),
])
def test_zip_entries_that_escape_or_are_links_are_refused(client, headers, session, org,
                                                          member, reason):
    archive = zip_bytes([("README.md", b"ok"), member])
    problems = refused_paths(upload(client, headers, "docs", archive=archive), "archive")
    (_path, reasons), = problems.items()
    assert reason in reasons[0]
    assert_nothing_recorded(session, org)


def test_zip_happy_path_with_directories_and_executables(client, headers):
    archive = zip_bytes([("docs/", b"", 0o040755), ("docs/a.md", b"A"),
                         ("run.sh", b"#!/bin/sh", 0o100755)])
    response = upload(client, headers, "docs", archive=archive)
    assert response.status_code == 201, response.get_json()
    files = client.get(f"{URL}/{response.get_json()['id']}/files",
                       headers=headers).get_json()["data"]
    assert [(f["path"], f["executable"]) for f in files] == \
        [("docs/a.md", False), ("run.sh", True)]
    assert client.get(f"{URL}/{response.get_json()['id']}/files/docs/a.md",
                      headers=headers).data == b"A"


def test_archives_that_cannot_be_read(client, headers):
    for junk in (b"definitely not an archive", b"\x1f\x8b\x08\x00broken gzip", b"PK\x03\x04no"):
        response = upload(client, headers, "docs", archive=junk)
        assert "archive" in refused_paths(response, "archive")[0].lower()


def test_a_zip_entry_whose_data_is_corrupt_names_its_path(client, headers, session, org):
    good = zip_bytes([("a.txt", b"hello hello hello hello")])
    # Flip a byte of the deflated data (after the 30-byte local header and the name).
    corrupt = bytearray(good)
    corrupt[30 + len("a.txt") + 2] ^= 0xFF
    response = upload(client, headers, "docs", archive=bytes(corrupt))
    problems = refused_paths(response, "archive")
    assert list(problems) == ["a.txt"] and "could not be read" in problems["a.txt"][0]
    assert_nothing_recorded(session, org)


# -- limits --------------------------------------------------------------------------------

def test_per_file_total_and_count_limits(client, headers, app, monkeypatch):
    monkeypatch.setitem(app.config, "PACK_MAX_FILE_BYTES", 10)
    monkeypatch.setitem(app.config, "PACK_MAX_BYTES", 25)
    monkeypatch.setitem(app.config, "PACK_MAX_FILES", 3)
    assert refused_paths(upload(client, headers, "docs", files={"big": b"x" * 11})) == \
        {"big": ["is larger than 10 bytes"]}
    assert upload(client, headers, "ok", files={"max": b"x" * 10}).status_code == 201
    total = refused_paths(upload(client, headers, "docs",
                                 files={"a": b"x" * 10, "b": b"x" * 10, "c": b"x" * 10}))
    assert "at most 25 bytes" in total[0]
    count = refused_paths(upload(client, headers, "docs",
                                 files={str(n): b"" for n in range(4)}))
    assert "at most 3 files" in count[0]
    archive = tar_bytes([(str(n), b"") for n in range(10)])
    assert "at most 3 files" in refused_paths(upload(client, headers, "docs", archive=archive),
                                              "archive")[0]
    big_entry = tar_bytes([("big", b"x" * 11)])
    assert refused_paths(upload(client, headers, "docs", archive=big_entry), "archive") == \
        {"big": ["is larger than 10 bytes"]}


def test_bodies_over_the_servers_limit_are_413(client, headers, app, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1000)
    response = upload(client, headers, "docs", files={"a": b"x" * 2000})
    assert error_of(response) == (413, "payload_too_large")


def test_thousands_of_file_parts_in_one_request(client, headers, session):
    """More parts than werkzeug's default of 1,000, all spooled into one file."""
    files = {f"d{n % 10}/f{n:04}.txt": str(n).encode() for n in range(1500)}
    response = upload(client, headers, "many", files=files)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["latest"]["file_count"] == 1500
    pack_id = response.get_json()["id"]
    assert client.get(f"{URL}/{pack_id}/files/d7/f1497.txt", headers=headers).data == b"1497"


def test_a_large_file_streams_through(client, headers):
    content = io.BytesIO(bytes(range(256)) * 8192).getvalue()  # 2 MiB
    response = upload(client, headers, "big", files={"blob.bin": content})
    assert response.status_code == 201
    pack_id = response.get_json()["id"]
    assert client.get(f"{URL}/{pack_id}/files/blob.bin", headers=headers).data == content
