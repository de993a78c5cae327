"""Logout ends the session: its refresh tokens stop working."""

from __future__ import annotations


def test_logout_redirects_and_kills_the_refresh_token(auth_client, tokens, authenticate,
                                                      verify_token):
    sid = verify_token(auth_client, tokens["access_token"])["sid"]

    response = auth_client.get("/user_management/sessions/logout", query_string={
        "session_id": sid, "return_to": "http://localhost:8000/"})

    assert response.status_code == 302
    assert response.headers["Location"] == "http://localhost:8000/"
    refreshed = authenticate(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 400
    assert refreshed.get_json() == {
        "error": "invalid_grant",
        "error_description": "The session of this refresh token has ended."}


def test_logout_with_a_foreign_return_to_shows_a_page_instead(auth_client, tokens, verify_token):
    sid = verify_token(auth_client, tokens["access_token"])["sid"]

    response = auth_client.get("/user_management/sessions/logout", query_string={
        "session_id": sid, "return_to": "https://evil.example/"})

    assert response.status_code == 200
    assert "Location" not in response.headers
    html = response.get_data(as_text=True)
    assert "Signed out" in html and "not an allowed URL" in html


def test_logout_without_session_id_is_400(auth_client):
    response = auth_client.get("/user_management/sessions/logout")
    assert response.status_code == 400
    assert "session_id is required" in response.get_data(as_text=True)
