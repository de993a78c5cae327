"""A workspace's status badge changes live, without a reload, while a real `evershell
worker` provisions it in bubblewrap: on the Workspaces list and on the workspace's page,
whose timeline gains the new event once."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.pages import Console
from tests.support.processes import BIN, ROOT, stop

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None,
                                reason="bubblewrap is not installed (apt-get install bubblewrap)")

WIDTHS = (390, 1024, 1280)
# Counts the live connections htmx opened (registered before any page script runs).
_COUNT_SSE_OPENS = ("document.addEventListener('htmx:sseOpen', () => {"
                    " window.sseOpens = (window.sseOpens || 0) + 1; }, true);")


@pytest.fixture(scope="module")
def world(live_server):
    owner = "owner@live-badges.example"
    api = live_server.seed_org("live-badges", "Live Badges", owner)
    provider = api("POST", "/v1/providers", json={
        "name": "offline", "kind": "scripted", "script": [{"text": "Done."}],
        "models": ["scripted"]})
    role = api("POST", "/v1/roles", json={
        "name": "builder", "provider_id": provider["id"], "model": "scripted",
        "system_prompt": "Build things.", "capabilities": "tools: [shell]\n"})
    return {"owner": owner, "api": api, "role": role["id"]}




def _shot(page, name: str) -> None:
    target = os.environ.get("EVERSHELL_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


def test_the_badge_turns_idle_live_while_a_worker_provisions(browser, live_server, world,
                                                             sandbox_root):
    context = browser.new_context()
    context.add_init_script(_COUNT_SSE_OPENS)
    listing = context.new_page()
    Console(listing, live_server.url).sign_in(world["owner"], "/workspaces")
    workspace = world["api"]("POST", "/v1/workspaces", json={"role_id": world["role"]})
    assert workspace["status"] == "provisioning"
    listing.reload()  # the new row, with no worker running yet
    detail = context.new_page()
    detail.goto(f"{live_server.url}/workspaces/{workspace['id']}")

    pages = (listing, detail)
    for page in pages:
        badge = page.locator(f"#ws-status-{workspace['id']} .badge").first
        expect(badge).to_have_text("provisioning")
        page.wait_for_function("window.sseOpens >= 1")  # listening before the worker runs
        page.evaluate("window.notReloaded = true")
    assert detail.locator("#ws-timeline li").count() == 1

    worker = subprocess.Popen(
        [str(BIN / "evershell"), "worker"], cwd=ROOT,
        env=dict(live_server.env, EVERSHELL_SANDBOX_ROOT=sandbox_root),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for page in pages:
            expect(page.locator(f"#ws-status-{workspace['id']} .badge").first) \
                .to_have_text("idle", timeout=60_000)
            assert page.evaluate("window.notReloaded") is True
            assert page.evaluate("window.sseOpens") == 1  # one connection, never reopened
    finally:
        code = stop(worker)
        errors = worker.stderr.read().decode(errors="replace")
    assert code in (0, -15), errors[-3000:]

    # The timeline gained the event once; its buttons now fit an idle workspace.
    expect(detail.locator("#event-2")).to_have_count(1)
    assert detail.locator("#ws-timeline li").count() == 2
    assert detail.locator("#event-1").count() == 1
    actions = detail.locator("#ws-actions")
    expect(actions.get_by_role("button", name="Stop")).to_be_visible()
    assert actions.get_by_role("button", name="Start").count() == 0

    for width in WIDTHS:
        for name, page in (("workspaces-live", listing), ("workspace-live", detail)):
            page.set_viewport_size({"width": width, "height": 900})
            _shot(page, f"{name}-{width}")
    context.close()
