"""Live servers and a real Chromium (Debian's, launched by path) for browser tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.databases import sibling_database
from tests.support.processes import (
    BIN,
    ROOT,
    evershell_env,
    free_port,
    run_cli,
    stop,
    wait_for_http,
)

CHROMIUM = os.environ.get("EVERSHELL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@dataclass
class LiveServer:
    url: str
    env: dict[str, str]

    def cli(self, *args: str) -> str:
        return run_cli(*args, env=self.env)

    def seed_org(self, slug: str, name: str, owner: str, members: tuple[str, ...] = ()):
        """An org with ``owner`` (and ``members``), through the CLI; a function calling
        the API with an owner's key: ``api(method, path, **requests kwargs) -> dict``."""
        self.cli("org", "create", "--name", name, "--slug", slug)
        self.cli("user", "add", "--org", slug, "--email", owner, "--role", "owner")
        for member in members:
            self.cli("user", "add", "--org", slug, "--email", member, "--role", "member")
        key = self.cli("apikey", "create", "--org", slug, "--user", owner,
                       "--name", "seeding").strip()

        def api(method: str, path: str, **kwargs) -> dict:
            import requests
            response = requests.request(method, self.url + path, timeout=30,
                                        headers={"Authorization": f"Bearer {key}"}, **kwargs)
            assert response.status_code < 300, (path, response.text)
            return response.json()

        return api


@pytest.fixture(scope="session")
def live_db(tmp_path_factory) -> str:
    """A database of the live server's own: it commits, so tests' rollbacks cannot reach it."""
    return sibling_database(os.environ.get("DATABASE_URL"), "e2e",
                            tmp_path_factory.mktemp("e2e-db"))


@pytest.fixture(scope="session")
def live_server(live_db, redis_url, sandbox_root, tmp_path_factory) -> Iterator[LiveServer]:
    """gunicorn serving Evershell, plus the local AuthKit-protocol server, as real processes."""
    port, auth_port = free_port(), free_port()
    instance = tmp_path_factory.mktemp("e2e-instance")
    auth_url = f"http://127.0.0.1:{auth_port}"
    env = evershell_env(
        DATABASE_URL=live_db, REDIS_URL=redis_url, PORT=str(port),
        EVERSHELL_INSTANCE_DIR=str(instance), SECRET_KEY="e2e-secret-key",
        EVERSHELL_PUBLIC_URL=f"http://127.0.0.1:{port}", EVERSHELL_LOCALAUTH_URL=auth_url,
        # Web and workers share the sandbox root, which must be world-searchable.
        EVERSHELL_SANDBOX_ROOT=sandbox_root)
    env.pop("WORKOS_CLIENT_ID", None)
    run_cli("db", "upgrade", env=env)
    auth = subprocess.Popen(
        [sys.executable, "-m", "evershell.localauth"], cwd=ROOT,
        env=dict(env, LOCALAUTH_PORT=str(auth_port), LOCALAUTH_ISSUER=auth_url,
                 LOCALAUTH_KEY_FILE=str(instance / "localauth-key.pem")))
    web = subprocess.Popen(
        [str(BIN / "gunicorn"), "--chdir", str(ROOT), "-k", "evershell.server.Worker",
         "-w", "1",
         "-b", f"127.0.0.1:{port}", "app:app"], env=env)
    try:
        wait_for_http(f"{auth_url}/health", auth)
        wait_for_http(f"http://127.0.0.1:{port}/health", web)
        yield LiveServer(url=f"http://127.0.0.1:{port}", env=env)
    finally:
        stop(web)
        stop(auth)


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()
