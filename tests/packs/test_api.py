"""/v1/packs: create, read, versions, files and downloads, edit, archive, delete; every
documented error code a caller can hit."""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa

from evershell.audit.models import AuditEntry
from evershell.packs.models import Pack, PackBlob, PackFile, PackVersion
from tests.factories import bearer, make_api_key, make_member, make_org
from tests.packs.conftest import URL, error_of, tar_bytes, upload

DOCS = {"README.md": b"# Docs\n", "guide/intro.md": b"Hello\n", "guide/setup.md": b"Steps\n"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_hash(files: dict[str, bytes], executable: frozenset = frozenset()) -> str:
    manifest = sorted([path, sha(content), path in executable] for path, content in files.items())
    return sha(json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode())


def audit_actions(session, target_id: str) -> list[str]:
    return list(session.scalars(sa.select(AuditEntry.action).where(
        AuditEntry.target_id == target_id).order_by(AuditEntry.id)))


def make_pack(client, headers, name="docs", files=None, **kwargs) -> dict:
    response = upload(client, headers, name, files=files or DOCS, **kwargs)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


# -- create and read ---------------------------------------------------------------------

def test_create_from_files_gives_version_1_with_its_manifest_hash(client, headers, owner,
                                                                    session):
    body = make_pack(client, headers, description="Product docs")
    assert body["id"].startswith("pack_") and body["name"] == "docs"
    assert body["description"] == "Product docs" and body["status"] == "active"
    assert body["mount_path"] == "/data/packs/docs/"
    assert body["latest_version"] == 1 and body["created_by_user_id"] == owner.user_id
    latest = body["latest"]
    assert latest["number"] == 1 and latest["file_count"] == 3
    assert latest["total_bytes"] == sum(len(c) for c in DOCS.values())
    assert latest["content_hash"] == manifest_hash(DOCS)
    assert audit_actions(session, body["id"]) == ["pack.create"]
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.target_id == body["id"]))
    assert entry.details == {"name": "docs", "version": 1, "file_count": 3,
                             "total_bytes": latest["total_bytes"],
                             "content_hash": latest["content_hash"]}


def test_get_list_and_the_archived_filter(client, headers, org):
    first = make_pack(client, headers, "one")
    second = make_pack(client, headers, "two")
    other = make_org()
    make_pack(client, bearer(make_api_key(make_member(other, role="owner"))), "one")
    listed = client.get(URL, headers=headers).get_json()
    assert [p["id"] for p in listed["data"]] == [second["id"], first["id"]]  # newest first
    assert listed["next_cursor"] is None
    client.post(f"{URL}/{first['id']}/archive", headers=headers)
    assert [p["id"] for p in client.get(URL, headers=headers).get_json()["data"]] == \
        [second["id"]]
    archived = client.get(URL, query_string={"archived": "true"}, headers=headers).get_json()
    assert [p["id"] for p in archived["data"]] == [first["id"]]
    got = client.get(f"{URL}/{second['id']}", headers=headers).get_json()
    assert got == second | {"updated_at": got["updated_at"]}


def test_list_pages_with_a_cursor(client, headers):
    ids = [make_pack(client, headers, f"p{n}", files={"a": bytes([n])})["id"] for n in range(3)]
    page = client.get(URL, query_string={"limit": 2}, headers=headers).get_json()
    rest = client.get(URL, query_string={"limit": 2, "cursor": page["next_cursor"]},
                      headers=headers).get_json()
    assert [p["id"] for p in page["data"] + rest["data"]] == ids[::-1]
    assert rest["next_cursor"] is None


def test_create_from_a_tar_gz_keeps_the_executable_bit(client, headers):
    archive = tar_bytes([("bin/run.sh", b"#!/bin/sh\necho hi\n", 0o755),
                         ("./notes.txt", b"n")], compression="gz")
    response = upload(client, headers, "tools", archive=archive)
    assert response.status_code == 201, response.get_json()
    pack_id = response.get_json()["id"]
    files = client.get(f"{URL}/{pack_id}/files", headers=headers).get_json()["data"]
    assert [(f["path"], f["executable"]) for f in files] == \
        [("bin/run.sh", True), ("notes.txt", False)]
    assert response.get_json()["latest"]["content_hash"] == manifest_hash(
        {"bin/run.sh": b"#!/bin/sh\necho hi\n", "notes.txt": b"n"}, frozenset({"bin/run.sh"}))


def test_names_must_be_directory_names_and_unique(client, headers, org):
    for bad in ("", "Docs", "my pack", "../x", "-x", ".hidden", "a/b", "x" * 65):
        response = upload(client, headers, bad, files={"a": b"1"})
        assert error_of(response) == (400, "validation_error"), bad
        assert "name" in response.get_json()["error"]["details"]["fields"]
    make_pack(client, headers, "docs")
    taken = upload(client, headers, "docs", files={"a": b"1"})
    assert error_of(taken) == (409, "name_taken")
    other = bearer(make_api_key(make_member(make_org(), role="owner")))
    assert upload(client, other, "docs", files={"a": b"1"}).status_code == 201  # per org


def test_archived_packs_keep_their_name(client, headers):
    pack = make_pack(client, headers, "docs")
    client.post(f"{URL}/{pack['id']}/archive", headers=headers)
    assert error_of(upload(client, headers, "docs", files={"a": b"1"})) == (409, "name_taken")


def test_description_is_limited(client, headers):
    response = upload(client, headers, "docs", files={"a": b"1"}, description="x" * 2001)
    assert error_of(response) == (400, "validation_error")
    assert "description" in response.get_json()["error"]["details"]["fields"]


def test_missing_name_and_json_bodies_are_refused(client, headers):
    assert error_of(upload(client, headers, None, files={"a": b"1"})) == \
        (400, "validation_error")
    # An upload route takes multipart only: a JSON body is the wrong media type.
    response = client.post(URL, json={"name": "docs"}, headers=headers)
    assert error_of(response) == (415, "unsupported_media_type")


# -- versions ------------------------------------------------------------------------------

def test_new_versions_number_up_and_keep_history(client, headers, session):
    pack = make_pack(client, headers)
    v2_files = {"README.md": b"# Docs v2\n"}
    response = upload(client, headers, None, files=v2_files,
                      url=f"{URL}/{pack['id']}/versions")
    assert response.status_code == 201
    v2 = response.get_json()
    assert v2["number"] == 2 and v2["pack_id"] == pack["id"] and v2["file_count"] == 1
    assert v2["content_hash"] == manifest_hash(v2_files)
    got = client.get(f"{URL}/{pack['id']}", headers=headers).get_json()
    assert got["latest_version"] == 2 and got["latest"]["id"] == v2["id"]
    versions = client.get(f"{URL}/{pack['id']}/versions", headers=headers).get_json()
    assert [v["number"] for v in versions["data"]] == [2, 1]
    one = client.get(f"{URL}/{pack['id']}/versions/1", headers=headers).get_json()
    assert [f["path"] for f in one["files"]] == ["README.md", "guide/intro.md",
                                                 "guide/setup.md"]
    assert one["files"][0] == {"path": "README.md", "size": 7, "digest": sha(b"# Docs\n"),
                               "executable": False}
    assert audit_actions(session, pack["id"]) == ["pack.create", "pack.version_create"]


def test_same_content_has_the_same_hash_and_reuploading_the_latest_records_nothing(
        client, headers, session):
    first = make_pack(client, headers, "a", files=DOCS)
    second = make_pack(client, headers, "b", files=dict(reversed(list(DOCS.items()))))
    assert first["latest"]["content_hash"] == second["latest"]["content_hash"]
    again = upload(client, headers, None, files=DOCS, url=f"{URL}/{first['id']}/versions")
    assert again.status_code == 200
    assert again.get_json()["id"] == first["latest"]["id"]
    assert client.get(f"{URL}/{first['id']}", headers=headers).get_json()["latest_version"] == 1
    assert audit_actions(session, first["id"]) == ["pack.create"]
    # Going back to earlier content after a change is a new version.
    upload(client, headers, None, files={"x": b"1"}, url=f"{URL}/{first['id']}/versions")
    back = upload(client, headers, None, files=DOCS, url=f"{URL}/{first['id']}/versions")
    assert back.status_code == 201 and back.get_json()["number"] == 3
    assert back.get_json()["content_hash"] == first["latest"]["content_hash"]


def test_a_changed_executable_bit_is_a_change(client, headers):
    pack = make_pack(client, headers, "tools", files={"run.sh": b"x"})
    response = upload(client, headers, None, archive=tar_bytes([("run.sh", b"x", 0o755)]),
                      url=f"{URL}/{pack['id']}/versions")
    assert response.status_code == 201 and response.get_json()["number"] == 2


def test_unknown_versions_are_404(client, headers):
    pack = make_pack(client, headers)
    for number in ("2", "0", "-1", "one"):
        response = client.get(f"{URL}/{pack['id']}/versions/{number}", headers=headers)
        assert error_of(response) == (404, "version_not_found"), number
    response = client.get(f"{URL}/{pack['id']}/files", query_string={"version": 9},
                          headers=headers)
    assert error_of(response) == (404, "version_not_found")


# -- files and downloads -------------------------------------------------------------------

def test_file_listing_pages_by_path(client, headers):
    files = {f"f{n:02}.txt": b"x" for n in range(5)}
    pack = make_pack(client, headers, files=files)
    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get(f"{URL}/{pack['id']}/files", query_string=query,
                          headers=headers).get_json()
        assert body["version"] == 1
        seen += [f["path"] for f in body["data"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(files)


def test_paths_sort_by_code_point_on_every_backend(client, headers):
    pack = make_pack(client, headers, files={"b.md": b"1", "B.md": b"2", "_x": b"3",
                                             "a/z": b"4"})
    body = client.get(f"{URL}/{pack['id']}/files", headers=headers).get_json()
    assert [f["path"] for f in body["data"]] == ["B.md", "_x", "a/z", "b.md"]


def test_download_returns_the_bytes_with_safe_headers(client, headers):
    content = b"<html><script>alert(1)</script></html>"
    pack = make_pack(client, headers, files={"site/index.html": content, "data.bin": b"\0\1"})
    response = client.get(f"{URL}/{pack['id']}/files/site/index.html", headers=headers)
    assert response.status_code == 200 and response.data == content
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert "index.html" in response.headers["Content-Disposition"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.headers["ETag"] == f'"{sha(content)}"'
    assert response.headers["Content-Length"] == str(len(content))
    binary = client.get(f"{URL}/{pack['id']}/files/data.bin", headers=headers)
    assert binary.headers["Content-Type"] == "application/octet-stream"
    assert binary.data == b"\0\1"


def test_download_revalidates_by_etag_and_serves_ranges(client, headers):
    pack = make_pack(client, headers, files={"a.txt": b"0123456789"})
    url = f"{URL}/{pack['id']}/files/a.txt"
    etag = client.get(url, headers=headers).headers["ETag"]
    cached = client.get(url, headers={**headers, "If-None-Match": etag})
    assert cached.status_code == 304 and cached.data == b""
    part = client.get(url, headers={**headers, "Range": "bytes=2-4"})
    assert part.status_code == 206 and part.data == b"234"


def test_download_of_an_older_version_and_missing_files(client, headers):
    pack = make_pack(client, headers, files={"a.txt": b"one"})
    upload(client, headers, None, files={"a.txt": b"two"}, url=f"{URL}/{pack['id']}/versions")
    url = f"{URL}/{pack['id']}/files/a.txt"
    assert client.get(url, headers=headers).data == b"two"
    assert client.get(url, query_string={"version": 1}, headers=headers).data == b"one"
    for missing in ("b.txt", "A.TXT", "../a.txt"):
        response = client.get(f"{URL}/{pack['id']}/files/{missing}", headers=headers)
        assert error_of(response) == (404, "file_not_found"), missing
    response = client.get(url, query_string={"version": 3}, headers=headers)
    assert error_of(response) == (404, "version_not_found")


# -- edit, archive -------------------------------------------------------------------------

def test_patch_changes_the_description_only(client, headers, session):
    pack = make_pack(client, headers)
    response = client.patch(f"{URL}/{pack['id']}", json={"description": "New"},
                            headers=headers)
    assert response.status_code == 200 and response.get_json()["description"] == "New"
    renamed = client.patch(f"{URL}/{pack['id']}", json={"description": "x", "name": "other"},
                           headers=headers)
    assert error_of(renamed) == (400, "validation_error")
    assert "name" in renamed.get_json()["error"]["details"]["fields"]
    assert audit_actions(session, pack["id"]) == ["pack.create", "pack.update"]


def test_archived_packs_are_read_only_until_unarchived(client, headers, session):
    pack = make_pack(client, headers)
    archived = client.post(f"{URL}/{pack['id']}/archive", headers=headers).get_json()
    assert archived["status"] == "archived" and archived["archived_at"]
    again = client.post(f"{URL}/{pack['id']}/archive", headers=headers)
    assert again.status_code == 200  # idempotent, audited once
    refused = upload(client, headers, None, files={"a": b"1"},
                     url=f"{URL}/{pack['id']}/versions")
    assert error_of(refused) == (409, "pack_archived")
    patch = client.patch(f"{URL}/{pack['id']}", json={"description": "x"}, headers=headers)
    assert error_of(patch) == (409, "pack_archived")
    assert client.get(f"{URL}/{pack['id']}/files/README.md", headers=headers).status_code == 200
    unarchived = client.post(f"{URL}/{pack['id']}/unarchive", headers=headers).get_json()
    assert unarchived["status"] == "active" and unarchived["archived_at"] is None
    assert upload(client, headers, None, files={"a": b"1"},
                  url=f"{URL}/{pack['id']}/versions").status_code == 201
    assert audit_actions(session, pack["id"]) == [
        "pack.create", "pack.archive", "pack.unarchive", "pack.version_create"]


# -- delete --------------------------------------------------------------------------------

def test_delete_removes_versions_files_and_unshared_blobs(client, headers, org, session):
    from evershell.packs.storage import store_for
    shared, own = b"shared content", b"only in the deleted pack"
    doomed = make_pack(client, headers, "doomed", files={"s": shared, "o": own})
    upload(client, headers, None, files={"o2": own + b"!"},
           url=f"{URL}/{doomed['id']}/versions")
    keeper = make_pack(client, headers, "keeper", files={"copy": shared})
    store = store_for(org.id)
    response = client.delete(f"{URL}/{doomed['id']}", headers=headers)
    assert response.status_code == 200
    assert response.get_json()["status"] == "deleted" and response.get_json()["name"] == "doomed"
    assert client.get(f"{URL}/{doomed['id']}", headers=headers).status_code == 404
    assert session.scalar(sa.select(sa.func.count()).select_from(PackVersion).where(
        PackVersion.pack_id == doomed["id"])) == 0
    assert store.exists(sha(shared))
    assert not store.exists(sha(own)) and not store.exists(sha(own + b"!"))
    assert set(session.scalars(sa.select(PackBlob.digest).where(PackBlob.org_id == org.id))) \
        == {sha(shared)}
    assert client.get(f"{URL}/{keeper['id']}/files/copy", headers=headers).data == shared
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "pack.delete",
                                                       AuditEntry.target_id == doomed["id"]))
    assert entry.details == {"name": "doomed", "versions": 2, "blobs_deleted": 2}


def test_blobs_are_per_org(client, headers, org):
    from evershell.packs.storage import store_for
    other_org = make_org()
    other = bearer(make_api_key(make_member(other_org, role="owner")))
    mine = make_pack(client, headers, "same", files={"a": b"same bytes"})
    make_pack(client, other, "same", files={"a": b"same bytes"})
    client.delete(f"{URL}/{mine['id']}", headers=headers)
    assert not store_for(org.id).exists(sha(b"same bytes"))
    assert store_for(other_org.id).exists(sha(b"same bytes"))


def test_delete_is_refused_while_a_role_mounts_the_pack(client, headers, org, monkeypatch,
                                                        session):
    from evershell.packs import services
    pack = make_pack(client, headers)
    monkeypatch.setattr(services, "in_use_by", lambda org_id, pack_id: ["role_X"]
                        if pack_id == pack["id"] else [])
    response = client.delete(f"{URL}/{pack['id']}", headers=headers)
    assert error_of(response) == (409, "pack_in_use")
    assert response.get_json()["error"]["details"] == {"role_ids": ["role_X"]}
    assert client.get(f"{URL}/{pack['id']}", headers=headers).status_code == 200
    assert session.scalar(sa.select(Pack).where(Pack.id == pack["id"])) is not None


# -- permissions and tenancy -------------------------------------------------------------

def test_members_read_but_cannot_write(client, headers, org, session):
    pack = make_pack(client, headers)
    member = bearer(make_api_key(make_member(org, role="member")))
    assert client.get(f"{URL}/{pack['id']}", headers=member).status_code == 200
    assert client.get(f"{URL}/{pack['id']}/files/README.md", headers=member).status_code == 200
    attempts = [
        upload(client, member, "mine", files={"a": b"1"}),
        upload(client, member, None, files={"a": b"1"}, url=f"{URL}/{pack['id']}/versions"),
        client.patch(f"{URL}/{pack['id']}", json={"description": "x"}, headers=member),
        client.post(f"{URL}/{pack['id']}/archive", headers=member),
        client.delete(f"{URL}/{pack['id']}", headers=member),
    ]
    assert [error_of(r) for r in attempts] == [(403, "permission_denied")] * 5
    denied = session.scalars(sa.select(AuditEntry.action).where(
        AuditEntry.org_id == org.id, AuditEntry.outcome == "denied")).all()
    assert sorted(denied) == ["pack.archive", "pack.create", "pack.delete", "pack.update",
                              "pack.version_create"]


def test_operators_write(client, org):
    operator = bearer(make_api_key(make_member(org, role="operator")))
    assert make_pack(client, operator)["name"] == "docs"


def test_a_key_without_packs_scopes_is_refused_even_reads(client, org, owner):
    key = bearer(make_api_key(owner, template="tasks_only"))
    assert error_of(client.get(URL, headers=key)) == (403, "permission_denied")


def test_another_orgs_ids_are_not_found(client, headers):
    theirs = make_pack(client, bearer(make_api_key(make_member(make_org(), role="owner"))))
    base = f"{URL}/{theirs['id']}"
    attempts = [
        client.get(base, headers=headers),
        client.get(f"{base}/versions", headers=headers),
        client.get(f"{base}/versions/1", headers=headers),
        client.get(f"{base}/files", headers=headers),
        client.get(f"{base}/files/README.md", headers=headers),
        upload(client, headers, None, files={"a": b"1"}, url=f"{base}/versions"),
        client.patch(base, json={"description": "x"}, headers=headers),
        client.post(f"{base}/archive", headers=headers),
        client.post(f"{base}/unarchive", headers=headers),
        client.delete(base, headers=headers),
    ]
    assert [error_of(r) for r in attempts] == [(404, "pack_not_found")] * len(attempts)


def test_create_class_routes_stop_when_billing_is_inactive_but_wind_down_works(
        client, headers, org, session):
    pack = make_pack(client, headers)
    org.billing_posture = "past_due"
    session.commit()
    assert error_of(upload(client, headers, "new", files={"a": b"1"})) == \
        (423, "billing_inactive")
    assert error_of(upload(client, headers, None, files={"a": b"1"},
                           url=f"{URL}/{pack['id']}/versions")) == (423, "billing_inactive")
    assert client.post(f"{URL}/{pack['id']}/archive", headers=headers).status_code == 200
    assert client.delete(f"{URL}/{pack['id']}", headers=headers).status_code == 200


def test_rows_reference_their_blobs(client, headers, org, session):
    """Every file row's blob is indexed and stored: the invariant deletion relies on."""
    from evershell.packs.storage import store_for
    make_pack(client, headers, files=DOCS)
    rows = session.execute(sa.select(PackFile.digest, PackBlob.size).join(
        PackBlob, sa.and_(PackBlob.org_id == PackFile.org_id,
                          PackBlob.digest == PackFile.digest))
        .where(PackFile.org_id == org.id)).all()
    assert len(rows) == 3
    assert all(store_for(org.id).exists(digest) for digest, _size in rows)
