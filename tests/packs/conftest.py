"""Packs test helpers: each test gets its own blob directory; uploads are built as real
multipart bodies (by the test client, or byte for byte where a filename must reach the
server exactly as written), and archives with the standard library."""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from tests.factories import bearer, make_api_key, make_member, make_org

URL = "/v1/packs"


@pytest.fixture(autouse=True)
def blob_dir(app, monkeypatch, tmp_path) -> Path:
    root = tmp_path / "blobs"
    monkeypatch.setitem(app.config, "BLOB_DIR", str(root))
    return root


@pytest.fixture
def org():
    return make_org()


@pytest.fixture
def owner(org):
    return make_member(org, role="owner", email=f"owner@{org.slug}.test")


@pytest.fixture
def headers(owner):
    return bearer(make_api_key(owner))


def error_of(response) -> tuple[int, str]:
    body = response.get_json() or {}
    return response.status_code, body.get("error", {}).get("code")


def files_data(files: dict[str, bytes] | Iterable[tuple[str, bytes]]) -> list:
    items = files.items() if isinstance(files, dict) else files
    return [(io.BytesIO(content), path) for path, content in items]


def upload(client, headers, name: str | None = "docs", files=None, archive: bytes | None = None,
           description: str | None = None, url: str = URL):
    """POST a multipart upload (create, or a new version with ``url``)."""
    data: dict = {}
    if name is not None:
        data["name"] = name
    if description is not None:
        data["description"] = description
    if files is not None:
        data["files"] = files_data(files)
    if archive is not None:
        data["archive"] = (io.BytesIO(archive), "pack.tar")
    return client.post(url, data=data, headers=headers, content_type="multipart/form-data")


def raw_multipart(fields: dict[str, str], parts: list[tuple[str, bytes, bytes]]) \
        -> tuple[bytes, str]:
    """A multipart body written byte for byte: ``parts`` are (field, raw filename as it
    appears between the quotes, content). Returns (body, content type)."""
    boundary = b"----evershell-test-boundary"
    chunks = []
    for name, value in fields.items():
        chunks.append(b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"" +
                      name.encode() + b"\"\r\n\r\n" + value.encode() + b"\r\n")
    for name, filename, content in parts:
        chunks.append(b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"" +
                      name.encode() + b"\"; filename=\"" + filename + b"\"\r\n"
                      b"Content-Type: application/octet-stream\r\n\r\n" + content + b"\r\n")
    chunks.append(b"--" + boundary + b"--\r\n")
    return b"".join(chunks), f"multipart/form-data; boundary={boundary.decode()}"


def tar_bytes(members: list[tarfile.TarInfo | tuple[str, bytes] | tuple[str, bytes, int]],
              compression: str = "") -> bytes:
    """A tar archive: (path, content[, mode]) regular files, or prepared TarInfo."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=f"w:{compression}") as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
                continue
            path, content, *mode = member
            info = tarfile.TarInfo(path)
            info.size = len(content)
            info.mode = mode[0] if mode else 0o644
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def tar_link(path: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.type = kind
    info.linkname = target
    return info


def zip_bytes(members: list[tuple[str, bytes] | tuple[str, bytes, int]]) -> bytes:
    """A zip archive of (path, content[, unix mode including the file type])."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, content, *mode in members:
            info = zipfile.ZipInfo(path)
            info.create_system = 3
            info.external_attr = (mode[0] if mode else 0o100644) << 16
            archive.writestr(info, content)
    return buffer.getvalue()
