"""Chromium against a live server: a folder picked in the browser becomes a pack, with the
upload's progress shown; then a new version from an archive, and a download.

Set EVERSHELL_SCREENSHOTS to a directory to keep screenshots of the pages."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from tests.e2e.pages import Console

pytestmark = pytest.mark.e2e

# Records what the progress bar showed while the upload ran (the form is replaced after).
_WATCH_PROGRESS = """
window.__progress = [];
document.addEventListener('htmx:xhr:progress', (event) => {
  const box = event.target.querySelector('[data-upload-progress]');
  if (box) window.__progress.push({hidden: box.hidden,
                                   value: box.querySelector('progress').value});
});
"""


def _shot(on_page, name: str) -> None:
    target = os.environ.get("EVERSHELL_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        on_page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


@pytest.fixture
def owner(live_server):
    live_server.cli("org", "create", "--name", "Packs Inc", "--slug", "packs-inc")
    email = "owner@packs.test"
    live_server.cli("user", "add", "--org", "packs-inc", "--email", email, "--role", "owner")
    return email


def test_upload_a_folder_then_a_new_version(page, live_server, owner, tmp_path):
    folder = tmp_path / "handbook"
    (folder / "guides").mkdir(parents=True)
    (folder / "README.md").write_text("# Handbook\n")
    (folder / "guides" / "onboarding.md").write_text("Welcome.\n" * 20_000)  # ~180 KB

    Console(page, live_server.url).sign_in(owner, "/settings/packs")
    _shot(page, "packs-empty")
    page.add_init_script(_WATCH_PROGRESS)
    page.evaluate(_WATCH_PROGRESS)
    page.get_by_label("Name").fill("handbook")
    page.get_by_label("Description").fill("How we work")
    page.get_by_label("Pick a folder instead").check()
    page.locator("#field-files").set_input_files(folder)
    page.get_by_role("button", name="Upload pack").click()
    page.get_by_text("Uploaded “handbook” version 1: 2 files.").wait_for()
    seen = page.evaluate("window.__progress")
    assert seen and all(not p["hidden"] for p in seen)
    assert max(p["value"] for p in seen) == 1
    _shot(page, "packs-list")

    page.get_by_role("link", name="handbook").click()
    page.get_by_role("heading", name="Files of v1").wait_for()
    assert page.get_by_role("link", name="README.md").is_visible()
    assert page.get_by_role("link", name="guides/onboarding.md").is_visible()

    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("README.md")
        info.size = len(b"# Handbook v2\n")
        tar.addfile(info, io.BytesIO(b"# Handbook v2\n"))
    (tmp_path / "v2.tar.gz").write_bytes(archive.getvalue())
    page.get_by_label("Or one archive").set_input_files(tmp_path / "v2.tar.gz")
    page.get_by_role("button", name="Upload version").click()
    page.get_by_text("Uploaded version 2: 1 file.").wait_for()
    _shot(page, "pack-page")

    with page.expect_download() as download:
        page.get_by_role("link", name="README.md").click()
    assert Path(download.value.path()).read_bytes() == b"# Handbook v2\n"
