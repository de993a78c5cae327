"""Every console page is usable at 390, 1024 and 1280 px wide: nothing is clipped.

An owner of an org with something in every table visits each page at each width in
Chromium. Content counts as clipped when an element sticks out of its container and no
scroll container of its own holds it (so it is cut off, or pushes the whole page
sideways), when a form control is too narrow for the text it shows, or, on the desktop
widths, when a table only fits by scrolling sideways.

Set EVERSHELL_SCREENSHOTS to a directory to keep a screenshot of every page and width."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import requests

from tests.e2e.pages import Console

WIDTHS = (390, 1024, 1280)
DESKTOP = 1024  # from this width on, tables fit without scrolling sideways

# Returns a description of each clipped element on the page (empty when none is).
_FIND_CLIPPED = """
(desktop) => {
  const found = [];
  const viewport = document.documentElement.clientWidth;
  const label = (el) => {
    let name = el.tagName.toLowerCase();
    if (el.id) name += '#' + el.id;
    if (el.classList.length) name += '.' + [...el.classList].join('.');
    const text = (el.innerText || el.value || '').trim().replace(/\\s+/g, ' ');
    return text ? `${name} "${text.slice(0, 40)}"` : name;
  };
  const shown = (el) => el.checkVisibility({visibilityProperty: true});
  // The nearest ancestor that cuts off what overflows it, and whether it scrolls.
  const clipperOf = (el) => {
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      const overflow = getComputedStyle(up).overflowX;
      if (overflow !== 'visible') return {box: up, scrolls: ['auto', 'scroll'].includes(overflow)};
    }
    return {box: null, scrolls: false};
  };
  const canvas = document.createElement('canvas').getContext('2d');
  const textWidth = (text, style) => {
    canvas.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    return canvas.measureText(text).width;
  };
  for (const el of document.body.querySelectorAll('*')) {
    if (!shown(el) || el.closest('.sr-only, .skip-link')) continue;
    const rect = el.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0) continue;
    const {box, scrolls} = clipperOf(el);
    if (box === null) {
      if (rect.right > viewport + 1 || rect.left < -1)
        found.push(`${label(el)} runs off the ${viewport}px page ` +
                   `(${Math.round(rect.left)}..${Math.round(rect.right)})`);
    } else if (!scrolls) {
      const outer = box.getBoundingClientRect();
      if (rect.right > outer.right + 1 || rect.left < outer.left - 1)
        found.push(`${label(el)} is cut off by ${label(box)}`);
    }
    const style = getComputedStyle(el);
    // Text cut short inside its own box (an ellipsis, or overflow: hidden).
    if (['hidden', 'clip'].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1
        && !el.title)
      found.push(`${label(el)} cuts its own text off`);
    // A form control narrower than the text it shows ("mem" for "member").
    if (el.matches('select, input[type=text], input[type=email], input[type=search]')) {
      const text = el.tagName === 'SELECT' ? (el.selectedOptions[0] || {}).text || '' : el.value;
      const room = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight)
        - (el.tagName === 'SELECT' ? 16 : 0);  // the drop-down arrow
      if (text && textWidth(text, style) > room + 1)
        found.push(`${label(el)} is too narrow for "${text}"`);
    }
    if (desktop && el.matches('.table-wrap') && el.scrollWidth > el.clientWidth + 1)
      found.push(`${label(el)} needs sideways scrolling at ${viewport}px`);
  }
  return found;
}
"""

# Closed <details> (the capabilities reference) must be usable once opened too.
_OPEN_DISCLOSURES = "document.querySelectorAll('details').forEach(d => { d.open = true; })"


def _shot(page, name: str) -> None:
    target = os.environ.get("EVERSHELL_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


class Api:
    """The seeding client: the owner's API key against the live server."""

    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {key}"}

    def send(self, method: str, path: str, **kwargs) -> dict:
        response = requests.request(method, self.base_url + path, headers=self.headers,
                                    timeout=30, **kwargs)
        assert response.status_code < 300, (method, path, response.text)
        return response.json() if response.content else {}


def _pack_upload(name: str, description: str) -> dict:
    return {"data": {"name": name, "description": description},
            "files": [("files", ("README.md", io.BytesIO(b"# Handbook\n"))),
                      ("files", ("guides/onboarding-for-new-engineers.md",
                                 io.BytesIO(b"Welcome.\n")))]}


@pytest.fixture(scope="module")
def seeded(live_server):
    """An org whose every table has rows, with long names where people type long names."""
    slug = "layout-co"
    live_server.cli("org", "create", "--name", "Layout Co", "--slug", slug)
    owner = "owner.with.a.rather.long.address@layout-company.example"
    live_server.cli("user", "add", "--org", slug, "--email", owner, "--role", "owner",
                    "--name", "Olivia Owner")
    for n, role in enumerate(("operator", "member", "member")):
        live_server.cli("user", "add", "--org", slug, "--email",
                        f"teammate-number-{n}@layout-company.example", "--role", role)
    api = Api(live_server.url, live_server.cli(
        "apikey", "create", "--org", slug, "--user", owner, "--name", "seeding").strip())

    secret = api.send("POST", "/v1/secrets", json={
        "name": "OPENAI_COMPATIBLE_API_KEY", "value": "sk-test-value",
        "description": "The key of the self-hosted vLLM cluster in the Frankfurt region"})
    api.send("POST", "/v1/secrets", json={"name": "GITHUB_TOKEN", "value": "ghp-test"})
    scripted = api.send("POST", "/v1/providers", json={
        "name": "offline demo", "kind": "scripted", "script": [{"text": "Done."}],
        "models": ["scripted"]})
    api.send("POST", "/v1/providers", json={
        "name": "self-hosted vLLM", "kind": "openai_compatible",
        "base_url": "https://vllm.inference.layout-company.example/v1",
        "api_key_secret_id": secret["id"],
        "models": ["meta-llama/Llama-3.1-70B-Instruct", "Qwen/Qwen2.5-Coder-32B-Instruct"]})
    pack = api.send("POST", "/v1/packs", **_pack_upload(
        "engineering-handbook", "How we work: onboarding, reviews, releases"))
    role = api.send("POST", "/v1/roles", json={
        "name": "code-reviewer", "description": "Reviews pull requests against our guides",
        "provider_id": scripted["id"], "model": "scripted",
        "system_prompt": "You review code carefully.",
        "capabilities": "tools: [shell, read_file]\nlimits:\n  memory_mb: 2048\n",
        "pack_ids": [pack["id"]]})
    api.send("PATCH", f"/v1/roles/{role['id']}", json={
        "system_prompt": "You review code carefully and kindly.",
        "capabilities": "tools: [shell, read_file, list_files]\nlimits:\n  memory_mb: 4096\n"})
    credential = api.send("POST", "/v1/credentials", json={
        "name": "DEPLOY_TOKEN_FOR_THE_STAGING_CLUSTER", "kind": "token",
        "material": {"token": "tok-test"}})
    for n, role_name in enumerate(("member", "operator")):
        api.send("POST", "/v1/memberships", json={
            "email": f"invited-person-{n}@a-partner-organisation.example", "role": role_name})
    members = api.send("GET", "/v1/memberships")["data"]
    operator = next(m for m in members if m.get("role") == "operator" and "id" in m
                    and m["id"].startswith("mem_"))
    api.send("PATCH", f"/v1/memberships/{operator['id']}", json={"role": "member"})
    api.send("PATCH", "/v1/org", json={"name": "Layout Company International"})
    api.send("POST", "/v1/api-keys", json={"name": "nightly CI of the monorepo",
                                            "template": "read_only"})
    member_key = live_server.cli("apikey", "create", "--org", slug, "--user",
                                 "teammate-number-1@layout-company.example",
                                 "--name", "member key").strip()
    denied = requests.post(live_server.url + "/v1/secrets", json={"name": "X", "value": "y"},
                           headers={"Authorization": f"Bearer {member_key}"}, timeout=30)
    assert denied.status_code == 403  # an audit entry with the "denied" outcome
    # Provisioning for good (no worker here): the page shows every part but the files.
    workspace = api.send("POST", "/v1/workspaces", json={"role_id": role["id"]})
    return {"owner": owner, "role": role["id"], "pack": pack["id"], "workspace": workspace["id"],
            "provider": scripted["id"], "secret": secret["id"],
            "credential": credential["id"]}


def _pages(seeded) -> dict[str, str]:
    role = f"/settings/roles/{seeded['role']}"
    return {
        "home": "/",
        "workspaces": "/workspaces",
        "workspace": f"/workspaces/{seeded['workspace']}",
        "roles": "/settings/roles",
        "role-new": "/settings/roles/new",
        "role-show": role,
        "role-edit": f"{role}/edit",
        "role-diff": f"{role}/diff?from=1&to=2",
        "providers": "/settings/providers",
        "provider-new": "/settings/providers/new",
        "provider-edit": f"/settings/providers/{seeded['provider']}/edit",
        "packs": "/settings/packs",
        "pack": f"/settings/packs/{seeded['pack']}",
        "secrets": "/settings/secrets",
        "secret-rotate": f"/settings/secrets/{seeded['secret']}/rotate",
        "credentials": "/settings/credentials",
        "credential-rotate": f"/settings/credentials/{seeded['credential']}/rotate",
        "members": "/settings/members",
        "api-keys": "/settings/api-keys",
        "audit": "/audit",
        "org": "/settings/org",
    }


@pytest.fixture(scope="module")
def owner_context(browser, live_server, seeded):
    context = browser.new_context()
    page = context.new_page()
    Console(page, live_server.url).sign_in(seeded["owner"])
    page.close()
    yield context
    context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_no_page_clips_its_content(owner_context, live_server, seeded, width):
    page = owner_context.new_page()
    page.set_viewport_size({"width": width, "height": 900})
    clipped = {}
    for name, path in _pages(seeded).items():
        response = page.goto(live_server.url + path)
        assert response.status == 200, (path, response.status)
        page.wait_for_load_state("networkidle")
        page.evaluate(_OPEN_DISCLOSURES)
        _shot(page, f"{name}-{width}")
        problems = page.evaluate(_FIND_CLIPPED, width >= DESKTOP)
        if problems:
            clipped[path] = problems
    page.close()
    assert not clipped, f"clipped at {width}px:\n" + "\n".join(
        f"{path}: {problem}" for path, problems in clipped.items() for problem in problems)


def test_the_check_sees_a_clipped_table(owner_context, live_server, seeded):
    """The check itself: a table squeezed into a box that hides its overflow is found."""
    page = owner_context.new_page()
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(live_server.url + "/settings/members")
    assert page.evaluate(_FIND_CLIPPED, False) == []
    page.add_style_tag(content=".table-wrap { overflow: hidden; }"
                               ".table td, .table th { white-space: nowrap; }")
    assert any("cut off by div.table-wrap" in p for p in page.evaluate(_FIND_CLIPPED, False))
    page.close()
