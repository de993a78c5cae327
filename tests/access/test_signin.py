"""Browser sign-in through the local AuthKit-protocol server, the sealed wos_session
cookie, transparent refresh (single-use refresh tokens, racing requests), sign-out."""

from __future__ import annotations

import re
import time

import pytest
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import RSAKey

from evershell.access import sessions
from evershell.access.models import ConsoleSession, User
from evershell.core.crypto import unseal
from tests.factories import make_member, make_org
from tests.support.signin import sign_in


def cookie_of(client) -> str | None:
    cookie = client.get_cookie(sessions.COOKIE_NAME)
    return cookie.value if cookie else None


@pytest.fixture
def owner(session):
    return make_member(make_org(name="Acme", slug="acme"), role="owner", email="ann@acme.test")


def test_login_redirects_to_authkit_with_state_and_pkce(client, localauth):
    response = client.get("/auth/login")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"{localauth.issuer}/user_management/authorize?")
    for part in ("state=", "code_challenge=", "code_challenge_method=S256",
                 "client_id=client_local", "response_type=code"):
        assert part in location


def test_sign_in_sets_a_sealed_httponly_lax_cookie_and_links_the_user(client, session, owner):
    done = sign_in(client, "Ann@Acme.test", next_path="/settings/api-keys")
    assert done.status_code == 302 and done.headers["Location"] == "/settings/api-keys"
    header = next(h for h in done.headers.getlist("Set-Cookie") if h.startswith("wos_session="))
    assert "HttpOnly" in header and "SameSite=Lax" in header
    # Tokens are sealed, not readable: no JWT (header.payload.signature, each part
    # base64url of JSON) shows through. A bare "eyJ" can occur in random sealed bytes.
    assert not re.search(r"eyJ[\w-]{10,}\.eyJ[\w-]{10,}\.", header)
    user = session.scalar(sa.select(User).where(User.email == "ann@acme.test"))
    assert user.idp_user_id and user.idp_user_id.startswith("user_")
    page = client.get("/")
    assert page.status_code == 200 and "ann@acme.test" in page.get_data(as_text=True)


def test_cookie_works_on_the_api_too(client, owner):
    sign_in(client, "ann@acme.test")
    me = client.get("/v1/me").get_json()
    assert me["credential_shape"] == "cookie" and me["role"] == "owner"


def test_callback_rejects_a_wrong_state(client, owner):
    client.get("/auth/login")
    response = client.get("/auth/callback?code=abc&state=forged")
    assert response.status_code == 400
    assert cookie_of(client) is None


def test_open_redirects_are_refused(client, owner):
    done = sign_in(client, "ann@acme.test", next_path="//evil.example/x")
    assert done.headers["Location"] == "/"


def test_a_user_without_membership_sees_a_clear_page(client, session):
    done = sign_in(client, "nobody@else.test")
    assert done.status_code == 403
    assert "not a member of any organisation" in done.get_data(as_text=True)
    assert cookie_of(client) is None


def test_a_user_of_several_orgs_chooses_one(client, session, owner):
    other = make_org(name="Beta", slug="beta")
    from evershell.access import services as access
    access.add_member(other, "ann@acme.test", "member")
    session.commit()
    chooser = sign_in(client, "ann@acme.test")
    assert chooser.status_code == 200 and "Choose an organisation" in chooser.get_data(True)
    done = client.post("/auth/choose-org", data={"org_id": other.id})
    assert done.status_code == 302
    assert client.get("/v1/me").get_json()["org"]["slug"] == "beta"


@pytest.mark.parametrize("mangle", [
    lambda v: v[:-2] + ("A" if v[-2] != "A" else "B") + v[-1],  # flipped bit
    lambda v: v[: len(v) // 2],  # truncated
    lambda v: "eyJhbGciOiJub25lIn0.e30.",  # not ours at all
])
def test_tampered_cookies_are_rejected(client, owner, mangle):
    sign_in(client, "ann@acme.test")
    client.set_cookie(sessions.COOKIE_NAME, mangle(cookie_of(client)))
    assert client.get("/v1/me").status_code == 401
    page = client.get("/")
    assert page.status_code == 302 and "/sign-in" in page.headers["Location"]


def test_cookie_sealed_under_another_password_is_rejected(app, client, owner):
    sign_in(client, "ann@acme.test")
    original = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"] = "another-secret"
    try:
        assert client.get("/v1/me").status_code == 401
    finally:
        app.config["SECRET_KEY"] = original


def _expire_access_token(app, client, localauth):
    """Swap the cookie's access token for an expired (validly signed) one."""
    with app.app_context():
        payload = unseal(sessions._cookie_key(), cookie_of(client), "wos_session")
        claims = jwt.decode(payload["at"], RSAKey.import_key(
            localauth.key_file.read_bytes())).claims
        claims["exp"] = int(time.time()) - 120
        header = {"alg": "RS256", "kid": jwt.decode(
            payload["at"], RSAKey.import_key(localauth.key_file.read_bytes())).header["kid"]}
        stale = jwt.encode(header, claims, RSAKey.import_key(localauth.key_file.read_bytes()))
        client.set_cookie(sessions.COOKIE_NAME,
                          sessions.seal_cookie(payload["sid"], stale, payload["rt"]))
    return cookie_of(client)


def test_expired_access_token_is_refreshed_transparently(app, client, owner, localauth):
    sign_in(client, "ann@acme.test")
    stale = _expire_access_token(app, client, localauth)
    response = client.get("/v1/me")
    assert response.status_code == 200
    assert cookie_of(client) != stale  # a fresh cookie came back


def test_racing_requests_with_one_refresh_token_both_succeed(app, client, owner, localauth):
    """Refresh tokens are single-use: the second request must reuse the first's result,
    not spend the token again (which would sign the person out)."""
    sign_in(client, "ann@acme.test")
    stale = _expire_access_token(app, client, localauth)
    first = client.get("/v1/me")
    client.set_cookie(sessions.COOKIE_NAME, stale)  # the second request still has the old one
    second = client.get("/v1/me")
    assert first.status_code == 200 and second.status_code == 200


def test_sign_out_ends_the_session_everywhere(client, session, owner, localauth):
    sign_in(client, "ann@acme.test")
    stolen = cookie_of(client)
    out = client.get("/auth/logout")
    assert out.status_code == 302
    assert out.headers["Location"].startswith(
        f"{localauth.issuer}/user_management/sessions/logout?session_id=")
    assert cookie_of(client) is None
    client.set_cookie(sessions.COOKIE_NAME, stolen)  # a copy of the cookie is dead too
    assert client.get("/v1/me").status_code == 401
    assert session.scalar(sa.select(ConsoleSession.revoked_at)) is not None


def test_cookie_changes_need_csrf_or_same_origin(client, owner):
    sign_in(client, "ann@acme.test")
    body = {"name": "Acme 2"}
    assert client.patch("/v1/org", json=body).status_code == 403
    cross = client.patch("/v1/org", json=body, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    same = client.patch("/v1/org", json=body, headers={"Origin": "http://localhost"})
    assert same.status_code == 200
    page = client.get("/settings/api-keys").get_data(as_text=True)
    token = page.split('name="csrf-token" content="')[1].split('"')[0]
    assert client.patch("/v1/org", json={"name": "Acme 3"},
                        headers={"X-CSRF-Token": token}).status_code == 200
