"""The real thing: ``python -m evershell.localauth`` as its own process, driven over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

REPO_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    env = {**os.environ, "LOCALAUTH_PORT": str(port),
           "LOCALAUTH_KEY_FILE": str(tmp_path / "key.pem"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "evershell.localauth"], cwd=tmp_path,
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited early:\n{log_path.read_text()}")
            try:
                if requests.get(f"{base}/health", timeout=1).json() == {"ok": True}:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server did not become healthy:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield base, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_real_process_runs_the_whole_flow(server, pkce_pair):
    base, log_path = server
    verifier, challenge = pkce_pair()
    params = {"client_id": "client_local", "redirect_uri": "http://localhost:8000/auth/callback",
              "response_type": "code", "provider": "authkit", "state": "proc",
              "code_challenge": challenge, "code_challenge_method": "S256"}

    page = requests.get(f"{base}/user_management/authorize", params=params, timeout=5)
    assert page.status_code == 200 and "Sign in as" in page.text
    submitted = requests.post(f"{base}/user_management/authorize",
                              data=params | {"email": "proc@example.com"},
                              allow_redirects=False, timeout=5)
    assert submitted.status_code == 302
    query = parse_qs(urlsplit(submitted.headers["Location"]).query)
    assert query["state"] == ["proc"]

    tokens = requests.post(f"{base}/user_management/authenticate", json={
        "client_id": "client_local", "client_secret": "sk_test_local",
        "grant_type": "authorization_code", "code": query["code"][0],
        "code_verifier": verifier}, timeout=5)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    keys = requests.get(f"{base}/sso/jwks/client_local", timeout=5).json()
    claims = jwt.decode(body["access_token"], KeySet.import_key_set(keys)).claims
    assert claims["iss"] == f"{base}/user_management/client_local"
    assert claims["sub"] == body["user"]["id"]

    refreshed = requests.post(f"{base}/user_management/authenticate", data={
        "client_id": "client_local", "client_secret": "sk_test_local",
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"]}, timeout=5)
    assert refreshed.status_code == 200

    # No token or secret reaches the server's log.
    log = log_path.read_text()
    for secret in (body["access_token"], body["refresh_token"], query["code"][0],
                   "sk_test_local", verifier):
        assert secret not in log
