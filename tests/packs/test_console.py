"""Console: Settings → Packs, signed in with a real console session."""

from __future__ import annotations

import io

import sqlalchemy as sa

from evershell.packs.models import Pack
from tests.factories import make_member, make_org
from tests.packs.conftest import tar_bytes

PAGE = "/settings/packs"
HX = {"HX-Request": "true"}


def text(response) -> str:
    return response.get_data(as_text=True)


def post(client, path, data=None, htmx=True):
    headers = {**(HX if htmx else {}), "X-CSRF-Token": client.csrf_token}
    return client.post(path, data=data or {}, headers=headers,
                       content_type="multipart/form-data")


def upload_form(name="docs", files=None, folder=False, archive=None, **extra):
    data = {"name": name, "description": "Team docs", **extra}
    data["files"] = [(io.BytesIO(content), path) for path, content in (files or {}).items()]
    if folder:
        data["folder"] = "1"
    data["archive"] = (io.BytesIO(archive or b""), "pack.tar" if archive else "")
    return data


def pack_named(session, org, name) -> Pack:
    return session.scalar(sa.select(Pack).where(Pack.org_id == org.id, Pack.name == name))


def test_owner_sees_the_upload_form_with_progress(console_client):
    html = text(console_client(make_member(role="owner")).get(PAGE))
    assert "<html" in html and "Upload a pack" in html and 'name="csrf_token"' in html
    assert 'enctype="multipart/form-data"' in html and 'hx-encoding="multipart/form-data"' in html
    assert "<progress" in html and "hx-on::xhr:progress" in html
    assert 'name="files" multiple' in html and "webkitdirectory" in html
    assert 'name="archive"' in html
    assert "No packs yet" in html


def test_members_read_without_write_controls(console_client, session):
    org = make_org()
    owner = make_member(org, role="owner")
    post(console_client(owner), PAGE, upload_form(files={"a.md": b"A"}))
    client = console_client(make_member(org, role="member"))
    listing = text(client.get(PAGE))
    assert "docs" in listing and "Upload a pack" not in listing and "<form" not in listing
    pack = pack_named(session, org, "docs")
    page = text(client.get(f"{PAGE}/{pack.id}"))
    assert "a.md" in page and "Archive" not in page and "Delete" not in page
    assert "Upload a new version" not in page and "<form" not in page
    refused = post(client, PAGE, upload_form(name="mine", files={"b": b"B"}))
    assert refused.status_code == 403


def test_upload_files_through_the_console(console_client, session):
    org = make_org()
    client = console_client(make_member(org, role="owner"))
    response = post(client, PAGE, upload_form(files={"guide/a.md": b"A", "b.md": b"B"}))
    html = text(response)
    assert response.status_code == 200 and "<html" not in html
    assert "Uploaded “docs” version 1: 2 files." in html
    pack = pack_named(session, org, "docs")
    assert pack.description == "Team docs" and pack.latest.file_count == 2
    assert f'href="/settings/packs/{pack.id}"' in html


def test_a_picked_folder_loses_its_own_name(console_client, session):
    org = make_org()
    client = console_client(make_member(org, role="owner"))
    post(client, PAGE, upload_form(files={"my-docs/a.md": b"A", "my-docs/sub/b.md": b"B"},
                                   folder=True))
    pack = pack_named(session, org, "docs")
    page = text(client.get(f"{PAGE}/{pack.id}"))
    assert ">a.md<" in page and ">sub/b.md<" in page and "my-docs" not in page


def test_refusals_show_inline_and_keep_the_form(console_client, session):
    org = make_org()
    client = console_client(make_member(org, role="owner"))
    response = post(client, PAGE, upload_form(name="Bad Name", files={"a": b"1"}))
    assert response.status_code == 200 and "lowercase letters" in text(response)
    assert 'value="Bad Name"' in text(response)
    escape = post(client, PAGE, upload_form(files={"../etc/passwd": b"x"}))
    html = text(escape)
    assert "<code>../etc/passwd</code>" in html and "&#39;..&#39; segment" in html
    assert pack_named(session, org, "docs") is None
    without_htmx = post(client, PAGE, upload_form(files={"/abs": b"x"}), htmx=False)
    assert without_htmx.status_code == 400 and "<html" in text(without_htmx)


def test_pack_page_versions_files_and_download(console_client, session):
    org = make_org()
    client = console_client(make_member(org, role="owner"))
    post(client, PAGE, upload_form(files={"a.md": b"one"}))
    pack = pack_named(session, org, "docs")
    response = post(client, f"{PAGE}/{pack.id}/versions",
                    {"archive": (io.BytesIO(tar_bytes([("a.md", b"two"), ("c.md", b"3")])),
                                 "v2.tar")})
    assert "Uploaded version 2: 2 files." in text(response)
    same = post(client, f"{PAGE}/{pack.id}/versions",
                {"archive": (io.BytesIO(tar_bytes([("a.md", b"two"), ("c.md", b"3")])),
                             "v2.tar")})
    assert "Nothing changed: this is exactly version 2." in text(same)
    page = text(client.get(f"{PAGE}/{pack.id}"))
    assert "Files of v2" in page and "/data/packs/docs/" in page
    assert f"/settings/packs/{pack.id}/files/c.md?version=2" in page
    old = text(client.get(f"{PAGE}/{pack.id}", query_string={"version": 1}))
    assert "Files of v1" in old and "c.md" not in old
    download = client.get(f"{PAGE}/{pack.id}/files/a.md", query_string={"version": 1})
    assert download.data == b"one"
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.headers["X-Content-Type-Options"] == "nosniff"


def test_archive_unarchive_and_delete(console_client, session):
    org = make_org()
    client = console_client(make_member(org, role="owner"))
    post(client, PAGE, upload_form(files={"a.md": b"A"}))
    pack = pack_named(session, org, "docs")
    archived = text(post(client, f"{PAGE}/{pack.id}/archive"))
    assert "Archived." in archived and "Unarchive" in archived
    assert "Upload a new version" not in archived
    assert "docs" not in text(client.get(PAGE, headers=HX)).split("<tbody>")[-1]
    assert "docs" in text(client.get(PAGE, query_string={"archived": "true"}))
    assert "Unarchived." in text(post(client, f"{PAGE}/{pack.id}/unarchive"))
    deleted = post(client, f"{PAGE}/{pack.id}/delete")
    assert deleted.status_code == 204 and deleted.headers["HX-Redirect"] == PAGE
    assert "Deleted pack “docs”" in text(client.get(PAGE))
    assert pack_named(session, org, "docs") is None


def test_a_pack_in_use_is_not_deleted(console_client, session, monkeypatch):
    from evershell.packs import services
    org = make_org()
    client = console_client(make_member(org, role="owner"))
    post(client, PAGE, upload_form(files={"a.md": b"A"}))
    pack = pack_named(session, org, "docs")
    monkeypatch.setattr(services, "in_use_by", lambda org_id, pack_id: ["role_1"])
    response = post(client, f"{PAGE}/{pack.id}/delete")
    assert response.status_code == 200 and "mounted by 1 role" in text(response)
    assert pack_named(session, org, "docs") is not None


def test_another_orgs_pack_is_a_404_page(console_client, session):
    theirs = make_org()
    post(console_client(make_member(theirs, role="owner")), PAGE,
         upload_form(files={"a.md": b"A"}))
    pack = pack_named(session, theirs, "docs")
    client = console_client(make_member(role="owner"))
    assert client.get(f"{PAGE}/{pack.id}").status_code == 404
    assert client.get(f"{PAGE}/{pack.id}/files/a.md").status_code == 404
