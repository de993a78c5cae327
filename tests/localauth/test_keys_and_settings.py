"""Signing-key persistence, the JWKS endpoint, settings from the environment, health."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from evershell.localauth import LocalAuthSettings, SettingsError, create_localauth_app


def test_key_file_is_created_private_and_reused_by_a_second_instance(
        auth_settings, auth_client, sign_in, authenticate, verify_token):
    key_file = Path(auth_settings.key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    token = authenticate(grant_type="authorization_code",
                         code=sign_in()[0]).get_json()["access_token"]

    restarted = create_localauth_app(auth_settings).test_client()

    first_kid = auth_client.get("/sso/jwks/client_local").get_json()["keys"][0]["kid"]
    second_kid = restarted.get("/sso/jwks/client_local").get_json()["keys"][0]["kid"]
    assert first_kid == second_kid
    # A token issued before the "restart" still verifies against the new instance's JWKS.
    assert verify_token(restarted, token)["iss"].endswith("/user_management/client_local")


def test_another_key_file_means_another_kid(auth_settings, auth_client, tmp_path):
    other = LocalAuthSettings(key_file=tmp_path / "other" / "key.pem")
    other_kid = create_localauth_app(other).test_client().get(
        "/sso/jwks/client_local").get_json()["keys"][0]["kid"]

    assert other_kid != auth_client.get("/sso/jwks/client_local").get_json()["keys"][0]["kid"]


def test_jwks_of_unknown_client_is_404(auth_client):
    response = auth_client.get("/sso/jwks/client_other")
    assert response.status_code == 404
    assert response.get_json()["code"] == "entity_not_found"


def test_health(auth_client):
    response = auth_client.get("/health")
    assert response.status_code == 200 and response.get_json() == {"ok": True}


def test_settings_defaults():
    settings = LocalAuthSettings.from_env({})
    assert (settings.host, settings.port) == ("127.0.0.1", 8765)
    assert settings.issuer == "http://127.0.0.1:8765"
    assert settings.token_issuer == "http://127.0.0.1:8765/user_management/client_local"
    assert (settings.client_id, settings.api_key) == ("client_local", "sk_test_local")
    assert settings.key_file == Path("instance/localauth-key.pem")
    assert settings.access_ttl == 300
    assert settings.allowed_redirect_prefixes == ("http://127.0.0.1", "http://localhost")
    assert "sk_test_local" not in repr(settings)


def test_settings_from_environment():
    settings = LocalAuthSettings.from_env({
        "LOCALAUTH_PORT": "9001", "LOCALAUTH_ISSUER": "http://auth.test:9001/",
        "LOCALAUTH_CLIENT_ID": "client_x", "LOCALAUTH_ACCESS_TTL": "60",
        "LOCALAUTH_ALLOWED_REDIRECT_PREFIXES": "http://app.test/, http://localhost:3000"})
    assert settings.port == 9001
    assert settings.token_issuer == "http://auth.test:9001/user_management/client_x"
    assert settings.access_ttl == 60
    assert settings.allowed_redirect_prefixes == ("http://app.test", "http://localhost:3000")


@pytest.mark.parametrize(("env", "message"), [
    ({"LOCALAUTH_PORT": "eighty"}, "LOCALAUTH_PORT must be an integer"),
    ({"LOCALAUTH_ACCESS_TTL": "0"}, "LOCALAUTH_ACCESS_TTL must be a positive"),
])
def test_bad_settings_name_the_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        LocalAuthSettings.from_env(env)
