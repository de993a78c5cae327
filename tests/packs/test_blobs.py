"""The local blob store: content addressing, atomic writes, limits, namespaces."""

from __future__ import annotations

import hashlib
import io
import stat

import pytest

from evershell.core.blobs import BlobNotFound, BlobTooLarge, LocalBlobStore, blob_store


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_put_names_blobs_by_their_sha256_and_fans_out(tmp_path):
    store = LocalBlobStore(tmp_path)
    blob = store.put(b"hello")
    assert (blob.digest, blob.size) == (sha(b"hello"), 5)
    path = tmp_path / blob.digest[:2] / blob.digest[2:4] / blob.digest
    assert path.read_bytes() == b"hello"
    assert not stat.S_IMODE(path.stat().st_mode) & 0o222  # blobs are read-only
    with store.open(blob.digest) as stream:
        assert stream.read() == b"hello"
    assert store.exists(blob.digest)


def test_streams_larger_than_a_chunk_are_hashed_whole(tmp_path):
    data = bytes(range(256)) * 10_000  # 2.5 MB: several chunks
    blob = LocalBlobStore(tmp_path).put(io.BytesIO(data))
    assert blob.digest == sha(data) and blob.size == len(data)


def test_same_content_twice_is_one_blob_and_no_temporary_files_remain(tmp_path):
    store = LocalBlobStore(tmp_path)
    first, second = store.put(b"same"), store.put(io.BytesIO(b"same"))
    assert first == second
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [store.path_of(first.digest)]


def test_too_large_stores_nothing(tmp_path):
    store = LocalBlobStore(tmp_path)
    with pytest.raises(BlobTooLarge):
        store.put(io.BytesIO(b"x" * 11), max_bytes=10)
    assert not store.exists(sha(b"x" * 11))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert store.put(b"x" * 10, max_bytes=10).size == 10  # the limit itself is allowed


def test_missing_and_malformed_digests(tmp_path):
    store = LocalBlobStore(tmp_path)
    with pytest.raises(BlobNotFound):
        store.open(sha(b"never stored"))
    for bad in ("../../etc/passwd", "AB" * 32, "", "0" * 63):
        assert not store.exists(bad)
        with pytest.raises(BlobNotFound):
            store.open(bad)
    store.delete(sha(b"never stored"))  # deleting nothing is fine


def test_delete_removes_the_blob(tmp_path):
    store = LocalBlobStore(tmp_path)
    digest = store.put(b"bye").digest
    store.delete(digest)
    assert not store.exists(digest)


def test_configured_store_is_namespaced_under_the_blob_dir(app, blob_dir):
    with app.app_context():
        store = blob_store("packs/org_1")
        digest = store.put(b"a").digest
        assert (blob_dir / "packs" / "org_1" / digest[:2] / digest[2:4] / digest).is_file()
        assert not blob_store("packs/org_2").exists(digest)
        with pytest.raises(ValueError):
            blob_store("../escape")


def test_default_location_is_the_instance_dir(app, monkeypatch):
    monkeypatch.setitem(app.config, "BLOB_DIR", None)
    monkeypatch.delenv("EVERSHELL_BLOB_DIR", raising=False)
    with app.app_context():
        assert blob_store("packs/x").root == \
            __import__("pathlib").Path(app.config["INSTANCE_DIR"]) / "blobs" / "packs" / "x"
    monkeypatch.setenv("EVERSHELL_BLOB_DIR", "/srv/blobs")
    with app.app_context():
        assert str(blob_store("packs/x").root) == "/srv/blobs/packs/x"
