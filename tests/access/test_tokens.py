"""Session JWTs: verified against the issuer's JWKS; tampered, expired, foreign-issuer,
alg=none and HS/RS-confused tokens are all 401; a JWT in the query string is 401."""

from __future__ import annotations

import base64
import json
import time

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

from evershell.access import tokens
from tests.factories import make_member


@pytest.fixture
def signer(localauth):
    """Sign tokens with the identity provider's own key (to craft edge cases)."""
    jwks = requests.get(f"{localauth.issuer}/sso/jwks/{localauth.client_id}", timeout=5).json()
    kid = jwks["keys"][0]["kid"]
    key = RSAKey.import_key(localauth.key_file.read_bytes())

    def sign(claims: dict, header: dict | None = None, key_=None) -> str:
        return jwt.encode(header or {"alg": "RS256", "kid": kid}, claims, key_ or key)

    sign.kid = kid
    sign.public_jwk = jwks["keys"][0]
    return sign


@pytest.fixture
def member(session):
    membership = make_member(role="operator")
    membership.user.idp_user_id = "user_idp_test_1"
    session.commit()
    return membership


def claims_for(localauth, member, **overrides):
    now = int(time.time())
    return {"iss": localauth.token_issuer, "sub": member.user.idp_user_id, "sid": "session_x",
            "org_id": member.org_id, "iat": now, "exp": now + 300, "jti": "j1",
            "auth_time": now} | overrides


def me(client, token, query=False):
    if query:
        return client.get(f"/v1/me?api_key={token}")
    return client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})


def test_valid_session_jwt_reaches_me(client, localauth, signer, member):
    response = me(client, signer(claims_for(localauth, member)))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["credential_shape"] == "session_jwt" and body["role"] == "operator"


def test_expired_token_is_401(client, localauth, signer, member):
    old = int(time.time()) - 3600
    response = me(client, signer(claims_for(localauth, member, iat=old, exp=old + 300)))
    assert response.status_code == 401
    assert "expired" in response.get_json()["error"]["message"]


def test_small_clock_skew_is_tolerated(client, localauth, signer, member):
    now = int(time.time())
    assert me(client, signer(claims_for(localauth, member, exp=now - 5))).status_code == 200


def test_foreign_issuer_is_401(client, localauth, signer, member):
    token = signer(claims_for(localauth, member, iss="https://evil.example"))
    assert me(client, token).status_code == 401


def test_tampered_payload_is_401(client, localauth, signer, member):
    token = signer(claims_for(localauth, member))
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "user_someone_else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert me(client, f"{header}.{forged}.{signature}").status_code == 401


def test_alg_none_is_401(client, localauth, member):
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    token = f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims_for(localauth, member))}."
    assert me(client, token).status_code == 401


def test_hs256_signed_with_the_public_key_is_401(client, localauth, signer, member):
    import hashlib
    import hmac
    public_pem = RSAKey.import_key(signer.public_jwk).as_pem(private=False)

    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    signing_input = f"{part({'alg': 'HS256', 'kid': signer.kid})}." \
                    f"{part(claims_for(localauth, member))}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")
    assert me(client, token).status_code == 401


def test_token_signed_by_another_key_with_the_same_kid_is_401(client, localauth, signer, member):
    other = RSAKey.generate_key(2048)
    token = signer(claims_for(localauth, member), key_=other)
    assert me(client, token).status_code == 401


def test_unknown_kid_refetches_the_jwks_once_then_fails(client, localauth, signer, member,
                                                        monkeypatch):
    tokens.jwks_cache.clear()
    fetches = []
    real_fetch = tokens.jwks_cache._fetch
    monkeypatch.setattr(tokens.jwks_cache, "_fetch",
                        lambda url: fetches.append(url) or real_fetch(url))
    assert me(client, signer(claims_for(localauth, member))).status_code == 200
    other = RSAKey.generate_key(2048)
    header = {"alg": "RS256", "kid": "rotated-key"}
    for _ in range(3):
        token = jwt.encode(header, claims_for(localauth, member), other)
        assert me(client, token).status_code == 401
    assert len(fetches) == 2  # the first fill, then one refetch for the unknown kid


def test_session_jwt_in_the_query_string_is_401_even_where_keys_are_allowed(
        client, localauth, signer, member):
    assert me(client, signer(claims_for(localauth, member)), query=True).status_code == 401


def test_removed_member_token_stops_working(client, session, localauth, signer, member):
    token = signer(claims_for(localauth, member))
    assert me(client, token).status_code == 200
    session.delete(member)
    session.commit()
    assert me(client, token).status_code == 401
