"""Errors gunicorn answers before the application sees the request (a request line or
headers over its limits, a malformed request) are the JSON envelope too."""

from __future__ import annotations

import socket

import pytest
import requests

from tests.support.processes import evershell_env, gunicorn


@pytest.fixture(scope="module")
def server(redis_url, tmp_path_factory):
    instance = tmp_path_factory.mktemp("server-errors")
    env = evershell_env(DATABASE_URL=f"sqlite:///{instance / 'db.sqlite'}",
                        REDIS_URL=redis_url, EVERSHELL_INSTANCE_DIR=str(instance),
                        SECRET_KEY="server-errors")
    with gunicorn(env) as url:
        yield url


def _envelope(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert error["request_id"] == response.headers["X-Request-Id"]
    return error


def test_a_request_line_over_the_limit_is_a_414_envelope(server):
    response = requests.get(f"{server}/v1/roles?name={'a' * 5000}", timeout=10)
    error = _envelope(response, 414, "uri_too_long")
    assert error["details"] == {"limit_bytes": 4094}
    assert "4094 bytes" in error["message"]


def test_a_huge_header_is_a_431_envelope(server):
    response = requests.get(f"{server}/v1/me", headers={"X-Big": "b" * 9000}, timeout=10)
    error = _envelope(response, 431, "headers_too_large")
    assert error["details"]["max_field_bytes"] == 8190


def test_too_many_headers_is_a_431_envelope(server):
    headers = {f"X-H{n}": "1" for n in range(120)}
    response = requests.get(f"{server}/v1/me", headers=headers, timeout=10)
    _envelope(response, 431, "headers_too_large")


def test_a_malformed_request_line_is_a_400_envelope(server):
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /v1/me HTTP/9.9x\r\nHost: x\r\n\r\n")
        raw = sock.recv(65536).decode()
    head, _, body = raw.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 400")
    assert '"code": "validation_error"' in body


def test_requests_within_the_limits_still_reach_the_app(server):
    response = requests.get(f"{server}/v1/me", timeout=10)
    _envelope(response, 401, "unauthenticated")


def test_the_access_log_never_carries_an_api_key(redis_url, tmp_path):
    """gunicorn prints request lines; an SSE client's ``?api_key=`` must not reach it."""
    log = tmp_path / "access.log"
    env = evershell_env(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}",
                        REDIS_URL=redis_url, EVERSHELL_INSTANCE_DIR=str(tmp_path),
                        SECRET_KEY="access-log")
    canary = "sk_CanaryCanaryCanaryCanaryCanary1234abcd"
    access = ("--access-logfile", str(log), "--access-logformat",
              '%(h)s "%(r)s" %(q)s %(U)s %(s)s "%({authorization}i)s"')
    with gunicorn(env, extra=access) as url:
        for path in (f"/v1/workspaces/ws_x/events?api_key={canary}",
                     f"/v1/me?after=1&API_KEY={canary}&x=1"):
            requests.get(f"{url}{path}", timeout=5,
                         headers={"Authorization": f"Bearer {canary}"})
    written = log.read_text()
    assert "api_key=[redacted]" in written and "API_KEY=[redacted]" in written
    assert canary not in written
