"""Seed 001 in a browser: a member submits a task with a file from the home page and
watches its transcript finish live, while a real `evershell worker` runs it in
bubblewrap."""

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

SCRIPT = [{"tool_calls": [{"name": "shell", "arguments": {
    "command": "wc -w /data/uploads/*/notes.txt"}}]},
    {"text": "Counted: {last_tool_output}"}]


@pytest.fixture(scope="module")
def world(live_server):
    owner, member = "owner@live-tasks.example", "member@live-tasks.example"
    api = live_server.seed_org("live-tasks", "Live Tasks", owner, members=(member,))
    provider = api("POST", "/v1/providers", json={
        "name": "offline", "kind": "scripted", "script": SCRIPT, "models": ["scripted"]})
    api("POST", "/v1/roles", json={
        "name": "word-counter", "description": "Counts the words of your files.",
        "provider_id": provider["id"], "model": "scripted",
        "system_prompt": "Count words.", "capabilities": "tools: [shell]\n"})
    return {"member": member}


def test_a_member_submits_a_task_with_a_file_and_watches_it_finish(browser, live_server,
                                                                  world, sandbox_root,
                                                                  tmp_path):
    page = browser.new_context().new_page()
    Console(page, live_server.url).sign_in(world["member"], "/")
    form = page.locator("#new-task")
    form.get_by_text("word-counter").click()
    form.get_by_label("What should the agent do?").fill("How many words are in my notes?")
    notes = tmp_path / "notes.txt"
    notes.write_text("one two three four\n")
    form.locator("input[name=file]").set_input_files(str(notes))
    form.get_by_role("button", name="Submit task").click()
    page.wait_for_url("**/tasks/task_*")
    expect(page.locator("#task-status .badge")).to_have_text("submitted")
    expect(page.get_by_role("button", name="Cancel task")).to_be_visible()

    worker = subprocess.Popen(
        [str(BIN / "evershell"), "worker"], cwd=ROOT,
        env=dict(live_server.env, EVERSHELL_SANDBOX_ROOT=sandbox_root),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        expect(page.locator("#task-status .badge")).to_have_text("succeeded",
                                                                 timeout=90_000)
    finally:
        code = stop(worker)
        errors = worker.stderr.read().decode(errors="replace")
    assert code in (0, -15), errors[-3000:]

    transcript = page.locator("#task-transcript")
    expect(transcript.locator("details.task-tool")).to_have_count(1)
    expect(transcript.locator(".task-msg:visible")).to_have_count(1)
    expect(transcript).to_contain_text("Counted: 4")
    expect(page.locator("#task-summary")).to_contain_text("Counted: 4")
    assert page.get_by_role("button", name="Cancel task").count() == 0
    transcript.locator("details.task-tool summary").click()
    expect(transcript.locator("details.task-tool")).to_contain_text("Peak memory")
    expect(page.get_by_role("button", name="Submit follow-up")).to_be_visible()
    target = os.environ.get("EVERSHELL_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / "task-page.png"), full_page=True)
