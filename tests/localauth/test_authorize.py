"""The "Sign in as" page: what it accepts, where it redirects, and what it refuses."""

from __future__ import annotations

from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from evershell.localauth.redirects import is_allowed_redirect

PREFIXES = ("http://127.0.0.1", "http://localhost")


def test_page_renders_a_local_sign_in_form(auth_client, authorize_params, pkce_pair):
    _, challenge = pkce_pair()
    response = auth_client.get("/user_management/authorize", query_string=authorize_params(
        code_challenge=challenge, code_challenge_method="S256", login_hint="ada@example.com"))

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "Local sign-in — development identity provider" in html
    assert 'name="email"' in html and 'value="ada@example.com"' in html
    assert f'name="code_challenge" value="{challenge}"' in html
    assert 'name="state" value="st-123"' in html


def test_submit_redirects_with_code_and_state_keeping_the_callback_query(
        auth_client, authorize_params):
    form = authorize_params(redirect_uri="http://127.0.0.1:8000/auth/callback?next=%2Fx")
    response = auth_client.post("/user_management/authorize", data=form | {"email": "a@b.example"})

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.netloc == "127.0.0.1:8000" and location.path == "/auth/callback"
    query = parse_qs(location.query)
    assert query["next"] == ["/x"] and query["state"] == ["st-123"]
    assert len(query["code"][0]) >= 32


def test_same_email_is_the_same_user_whatever_its_case(sign_in, authenticate):
    first = authenticate(grant_type="authorization_code", code=sign_in("ada@example.com")[0])
    second = authenticate(grant_type="authorization_code", code=sign_in(" ADA@example.COM")[0])

    user = first.get_json()["user"]
    assert user["id"] == second.get_json()["user"]["id"]
    assert user["id"].startswith("user_") and len(user["id"]) == 5 + 26
    assert user["email"] == "ada@example.com" and user["email_verified"] is True


def test_invalid_email_rerenders_the_form(auth_client, authorize_params):
    response = auth_client.post("/user_management/authorize",
                           data=authorize_params() | {"email": "not-an-email"})

    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "Enter an email address" in response.get_data(as_text=True)


@pytest.mark.parametrize(("override", "message"), [
    ({"redirect_uri": "https://evil.example/cb"}, "is not allowed"),
    ({"redirect_uri": "http://localhost.evil.example/cb"}, "is not allowed"),
    ({"redirect_uri": "http://localhost:80@evil.example/cb"}, "is not allowed"),
    ({"redirect_uri": None}, "redirect_uri is required"),
    ({"client_id": "client_other"}, "Unknown client_id"),
    ({"response_type": "token"}, "response_type must be"),
    ({"provider": "GoogleOAuth"}, "Only provider"),
    ({"code_challenge": "x" * 43, "code_challenge_method": "plain"}, "must be 'S256'"),
])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_bad_requests_are_refused_without_redirecting(auth_client, authorize_params, override,
                                                      message, method):
    params = authorize_params(**override)
    if method == "GET":
        response = auth_client.get("/user_management/authorize", query_string=params)
    else:
        response = auth_client.post("/user_management/authorize", data=params | {"email": "a@b.c"})

    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.mimetype == "text/html"
    assert message in unescape(response.get_data(as_text=True))


@pytest.mark.parametrize("url", [
    "http://localhost:8000/auth/callback",
    "http://127.0.0.1/cb",
    "http://localhost",
])
def test_allowed_redirects(url):
    assert is_allowed_redirect(url, PREFIXES)


@pytest.mark.parametrize("url", [
    "https://localhost/cb",               # another scheme than the prefix names
    "http://localhost.evil.example/",     # host that merely starts like the prefix
    "http://user@localhost/cb",           # userinfo
    "http://localhost\\@evil.example/",   # browsers and urlsplit disagree on backslashes
    "javascript:alert(1)",
    "//localhost/cb",
    "",
])
def test_refused_redirects(url):
    assert not is_allowed_redirect(url, PREFIXES)


def test_prefix_with_port_and_path_is_matched_by_segment():
    prefixes = ("http://localhost:8000/app",)
    assert is_allowed_redirect("http://localhost:8000/app/callback", prefixes)
    assert not is_allowed_redirect("http://localhost:8000/application", prefixes)
    assert not is_allowed_redirect("http://localhost:9000/app/callback", prefixes)
