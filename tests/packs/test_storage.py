"""Blob bookkeeping under deletion and re-upload, batches, and the roles link that makes
DELETE answer 409 pack_in_use."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from evershell.core.blobs import BlobTooLarge, LocalBlobStore
from evershell.extensions import db
from evershell.packs import storage
from evershell.packs.models import PackBlob
from tests.packs.conftest import URL, error_of, upload


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_batch_stores_every_blob_once_by_the_end_of_the_block(tmp_path):
    store = LocalBlobStore(tmp_path)
    with store.batch() as batch:
        blobs = [batch.put(f"blob {n % 50}".encode()) for n in range(200)]
    assert len({b.digest for b in blobs}) == 50
    assert all(store.exists(b.digest) for b in blobs)
    assert [p for p in (tmp_path / "tmp").iterdir()] == []  # no temporary files left


def test_a_refused_blob_in_a_batch_stores_nothing_of_itself(tmp_path):
    store = LocalBlobStore(tmp_path)
    with pytest.raises(BlobTooLarge), store.batch() as batch:
        first = batch.put(b"fine")
        batch.put(b"far too large", max_bytes=4)
    assert store.exists(first.digest) and not store.exists(sha(b"far too large"))


def test_an_upload_restores_a_blob_deleted_while_it_was_being_stored(
        client, headers, org, monkeypatch):
    """A pack deletion that removes a blob between an upload's storing and its commit:
    the upload, holding the blob's row, stores it again."""
    content = b"shared between a dying pack and a new upload"
    original = storage.store_entries

    def store_then_lose(org_id, entries, limit, field):
        stored = original(org_id, entries, limit, field)
        storage.store_for(org_id).delete(sha(content))  # what the deletion did meanwhile
        return stored

    monkeypatch.setattr(storage, "store_entries", store_then_lose)
    response = upload(client, headers, "docs", files={"a.txt": content})
    assert response.status_code == 201
    assert storage.store_for(org.id).exists(sha(content))
    assert client.get(f"{URL}/{response.get_json()['id']}/files/a.txt",
                      headers=headers).data == content


def test_release_keeps_blobs_a_file_still_references(client, headers, org):
    upload(client, headers, "keeper", files={"a": b"kept"})
    store = storage.store_for(org.id)
    orphan = store.put(b"orphan")
    db.session.add(PackBlob(org_id=org.id, digest=orphan.digest, size=orphan.size))
    db.session.commit()
    # The bulk delete meets the foreign key and falls back to one row at a time.
    assert storage.release(org.id, [sha(b"kept"), orphan.digest]) == 1
    assert storage._delete_rows(org.id, [sha(b"kept")]) == []
    assert store.exists(sha(b"kept")) and not store.exists(orphan.digest)
    remaining = set(db.session.scalars(sa.select(PackBlob.digest).where(
        PackBlob.org_id == org.id)))
    assert remaining == {sha(b"kept")}


# -- roles that mount a pack ---------------------------------------------------------------

@pytest.fixture
def provider_id(client, headers) -> str:
    response = client.post("/v1/providers", json={
        "name": "offline", "kind": "scripted", "script": [{"text": "Done."}],
        "models": ["scripted"]}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def make_role(client, headers, provider_id: str, pack_ids: list[str]) -> str:
    response = client.post("/v1/roles", json={
        "name": "writer", "provider_id": provider_id, "model": "scripted",
        "pack_ids": pack_ids}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_delete_is_409_while_any_role_version_mounts_the_pack(client, headers, provider_id,
                                                              monkeypatch):
    from evershell.roles import services as roles
    pack_id = upload(client, headers, "docs", files={"a": b"1"}).get_json()["id"]
    role_id = make_role(client, headers, provider_id, [pack_id])
    response = client.delete(f"{URL}/{pack_id}", headers=headers)
    assert error_of(response) == (409, "pack_in_use")
    assert response.get_json()["error"]["details"] == {"role_ids": [role_id]}
    # The current version no longer mounts it; version 1 still does.
    changed = client.patch(f"/v1/roles/{role_id}", json={"pack_ids": []}, headers=headers)
    assert changed.status_code == 200, changed.get_json()
    assert error_of(client.delete(f"{URL}/{pack_id}", headers=headers)) == (409, "pack_in_use")
    # Without the roles service's answer, the link table says the same.
    monkeypatch.delattr(roles, "roles_using_pack")
    assert error_of(client.delete(f"{URL}/{pack_id}", headers=headers)) == (409, "pack_in_use")


def test_a_pack_no_role_mounts_can_be_deleted_beside_one_that_is(client, headers,
                                                                 provider_id):
    used = upload(client, headers, "used", files={"a": b"1"}).get_json()["id"]
    free = upload(client, headers, "free", files={"a": b"2"}).get_json()["id"]
    make_role(client, headers, provider_id, [used])
    assert client.delete(f"{URL}/{free}", headers=headers).status_code == 200
