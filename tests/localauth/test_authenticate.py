"""``POST /user_management/authenticate``: code grant with PKCE, refresh rotation, errors."""

from __future__ import annotations

from joserfc import jws

from evershell.localauth.context import EXTENSION


def test_full_code_flow_with_pkce_yields_a_verifiable_access_token(
        auth_client, auth_settings, sign_in, authenticate, pkce_pair, verify_token):
    verifier, challenge = pkce_pair()
    page = auth_client.get("/user_management/authorize", query_string={
        "client_id": "client_local", "redirect_uri": "http://localhost:8000/auth/callback",
        "response_type": "code", "provider": "authkit", "state": "s1",
        "code_challenge": challenge, "code_challenge_method": "S256"})
    assert page.status_code == 200

    code, query = sign_in(state="s1", code_challenge=challenge, code_challenge_method="S256",
                          organization_id="org_01TEST")
    assert query["state"] == ["s1"]
    response = authenticate(grant_type="authorization_code", code=code, code_verifier=verifier)

    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["organization_id"] == "org_01TEST"
    assert body["authentication_method"] == "Password"
    assert body["refresh_token"]
    user = body["user"]
    assert user["object"] == "user" and user["email"] == "ada@example.com"
    assert (user["first_name"], user["last_name"]) == ("Ada", "Lovelace")
    assert user["email_verified"] is True and user["profile_picture_url"] is None
    assert user["created_at"].endswith("Z") and user["updated_at"].endswith("Z")

    claims = verify_token(auth_client, body["access_token"])
    assert claims["iss"] == "http://127.0.0.1:8765/user_management/client_local"
    assert claims["sub"] == user["id"]
    assert claims["sid"].startswith("session_")
    assert claims["org_id"] == "org_01TEST"
    assert claims["exp"] - claims["iat"] == auth_settings.access_ttl
    assert claims["auth_time"] == claims["iat"]
    assert len(claims["jti"]) == 26
    assert "aud" not in claims

    header = jws.extract_compact(body["access_token"].encode()).protected
    jwk = auth_client.get("/sso/jwks/client_local").get_json()["keys"][0]
    assert header["alg"] == "RS256" and header["kid"] == jwk["kid"]
    assert (jwk["alg"], jwk["use"], jwk["kty"]) == ("RS256", "sig", "RSA")
    assert "d" not in jwk


def test_token_without_organization_has_no_org_id(auth_client, sign_in, authenticate,
                                                  verify_token):
    body = authenticate(grant_type="authorization_code", code=sign_in()[0]).get_json()

    assert body["organization_id"] is None
    assert "org_id" not in verify_token(auth_client, body["access_token"])


def test_wrong_or_missing_pkce_verifier_is_invalid_grant(sign_in, authenticate, pkce_pair):
    _, challenge = pkce_pair()
    wrong_verifier, _ = pkce_pair()
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"}

    wrong = authenticate(grant_type="authorization_code", code=sign_in(**pkce)[0],
                         code_verifier=wrong_verifier)
    missing = authenticate(grant_type="authorization_code", code=sign_in(**pkce)[0])

    assert wrong.status_code == 400
    assert wrong.get_json()["error"] == "invalid_grant"
    assert "does not match" in wrong.get_json()["error_description"]
    assert missing.status_code == 400
    assert "code_verifier is required" in missing.get_json()["error_description"]


def test_code_is_single_use(sign_in, authenticate):
    code, _ = sign_in()
    assert authenticate(grant_type="authorization_code", code=code).status_code == 200

    again = authenticate(grant_type="authorization_code", code=code)

    assert again.status_code == 400
    assert again.get_json() == {
        "error": "invalid_grant",
        "error_description": "The authorization code is invalid or has already been used."}


def test_code_expires_after_ten_minutes(auth_app, sign_in, authenticate):
    store = auth_app.extensions[EXTENSION].store
    code, _ = sign_in()
    issued = store.clock()
    store.clock = lambda: issued + 601

    response = authenticate(grant_type="authorization_code", code=code)

    assert response.status_code == 400
    assert response.get_json()["error_description"] == "The authorization code has expired."


def test_refresh_rotates_and_each_refresh_token_works_once(auth_client, tokens, authenticate,
                                                           verify_token):
    first_claims = verify_token(auth_client, tokens["access_token"])

    refreshed = authenticate(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.get_json()
    body = refreshed.get_json()
    assert body["refresh_token"] != tokens["refresh_token"]
    claims = verify_token(auth_client, body["access_token"])
    assert claims["sid"] == first_claims["sid"] and claims["sub"] == first_claims["sub"]
    assert claims["jti"] != first_claims["jti"]
    assert claims["auth_time"] == first_claims["auth_time"]
    assert body["user"]["id"] == tokens["user"]["id"]

    reused = authenticate(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert reused.status_code == 400
    assert reused.get_json() == {
        "error": "invalid_grant",
        "error_description": "The refresh token has already been exchanged."}

    # The replacement still works, also from a form-encoded body (the SDKs send JSON, curl not).
    again = authenticate(as_form=True, grant_type="refresh_token",
                         refresh_token=body["refresh_token"])
    assert again.status_code == 200


def test_refresh_can_switch_organization(auth_client, tokens, authenticate, verify_token):
    switched = authenticate(grant_type="refresh_token", refresh_token=tokens["refresh_token"],
                            organization_id="org_01OTHER").get_json()
    assert switched["organization_id"] == "org_01OTHER"
    assert verify_token(auth_client, switched["access_token"])["org_id"] == "org_01OTHER"

    # The switch sticks to the session for later refreshes.
    later = authenticate(grant_type="refresh_token",
                         refresh_token=switched["refresh_token"]).get_json()
    assert later["organization_id"] == "org_01OTHER"


def test_unknown_refresh_token_is_invalid_grant(authenticate):
    response = authenticate(grant_type="refresh_token", refresh_token="nope")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_wrong_client_secret_or_client_id_is_401(sign_in, authenticate):
    code, _ = sign_in()

    wrong_secret = authenticate(grant_type="authorization_code", code=code,
                                client_secret="sk_test_wrong")
    wrong_client = authenticate(grant_type="authorization_code", code=code,
                                client_id="client_other")
    missing_secret = authenticate(grant_type="authorization_code", code=code, client_secret="")

    for response in (wrong_secret, wrong_client, missing_secret):
        assert response.status_code == 401
        assert response.get_json() == {"error": "invalid_client",
                                       "error_description": "Invalid client ID or client secret."}
    # Refused client authentication does not spend the code.
    assert authenticate(grant_type="authorization_code", code=code).status_code == 200


def test_malformed_requests_are_400(auth_client, authenticate):
    unsupported = authenticate(grant_type="password")
    missing_code = authenticate(grant_type="authorization_code")
    not_an_object = auth_client.post("/user_management/authenticate", json=["x"])

    assert unsupported.status_code == 400
    assert unsupported.get_json()["error"] == "unsupported_grant_type"
    assert missing_code.status_code == 400
    assert missing_code.get_json()["error"] == "invalid_request"
    assert not_an_object.status_code == 400
    assert not_an_object.get_json()["error"] == "invalid_request"
