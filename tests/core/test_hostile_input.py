"""Hostile input gets a 400 (or 415) envelope on every route, never a 500, and nothing
that no column can store reaches a service."""

from __future__ import annotations

import re

import pytest

from tests.factories import bearer, make_api_key, make_member

HOSTILE_BODIES = {
    "a number of 5,000 digits": '{"name": ' + "7" * 5000 + "}",
    "a float of 5,000 digits": '{"name": 0.' + "7" * 5000 + "}",
    "Infinity": '{"name": Infinity}',
    "nesting 100,000 deep": "[" * 100_000 + "]" * 100_000,
    "nesting 100 deep": '{"name": ' + "[" * 100 + "]" * 100 + "}",
    "a lone surrogate": '{"name": "\\ud800", "value": "x", "email": "a@b.test"}',
    "a lone surrogate in a key": '{"\\udfff": 1}',
    "a NUL character": '{"name": "a\\u0000b", "value": "x", "description": "\\u0000"}',
}


MISSING_ID = "zzz_01JAAAAAAAAAAAAAAAAAAAAAAA"  # well formed, so the route matches; unknown


def _concrete(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", MISSING_ID, rule)


def _json_routes(app):
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v1/"):
            continue
        for method in sorted(rule.methods & {"POST", "PUT", "PATCH"}):
            yield method, _concrete(rule.rule), rule.endpoint


@pytest.fixture
def owner_headers(app):
    owner = make_member(role="owner")
    return bearer(make_api_key(owner))


def test_every_body_route_refuses_hostile_json_with_an_envelope(app, client, owner_headers,
                                                                monkeypatch):
    monkeypatch.setitem(app.config, "RATE_LIMIT_BURST", 100_000)
    routes = list(_json_routes(app))
    assert len(routes) > 20  # the walk really covers the API
    takes_json = 0
    for method, path, _endpoint in routes:
        refused = False
        for label, body in HOSTILE_BODIES.items():
            response = client.open(path, method=method, data=body, headers={
                **owner_headers, "Content-Type": "application/json"})
            assert response.status_code != 429 and response.status_code < 500, \
                (method, path, label, response.get_data())
            error = response.get_json()["error"] if response.status_code >= 400 else None
            assert response.status_code < 400 or error["code"], (method, path, label)
            if response.status_code == 400:
                assert error["code"] == "validation_error", (method, path, label)
                refused = True
        takes_json += refused
    assert takes_json >= 16


@pytest.mark.parametrize("label", ["a lone surrogate", "a NUL character",
                                   "a number of 5,000 digits", "nesting 100,000 deep"])
def test_hostile_json_is_400_with_the_reason(client, owner_headers, label):
    response = client.post("/v1/secrets", data=HOSTILE_BODIES[label],
                           headers={**owner_headers, "Content-Type": "application/json"})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"]["fields"]


def test_nul_in_a_role_prompt_is_refused_and_nothing_is_stored(client, owner_headers):
    before = client.get("/v1/roles", headers=owner_headers).get_json()["data"]
    response = client.post("/v1/roles", headers=owner_headers, json={
        "name": "nul", "provider_id": "prv_x", "model": "m", "system_prompt": "a\x00b"})
    assert response.status_code == 400
    assert response.get_json()["error"]["details"]["fields"] == {
        "system_prompt": ["Text may not contain NUL characters."]}
    assert client.get("/v1/roles", headers=owner_headers).get_json()["data"] == before


@pytest.mark.parametrize("query", ["name=a%00b", "limit=99999999999999999999",
                                   "limit=%C2%B9", "cursor=%00"])
def test_hostile_query_strings_are_400(client, owner_headers, query):
    response = client.get(f"/v1/secrets?{query}", headers=owner_headers)
    assert response.status_code == 400, response.get_data()
    assert response.get_json()["error"]["code"] == "validation_error"


def test_path_and_query_numbers_are_numbers_with_bounds(client):
    from tests.roles.conftest import make_pack, make_role
    owner = make_member(role="owner")
    headers = bearer(make_api_key(owner))
    role = make_role(owner)
    pack = make_pack(owner)
    role_id = role.role.id
    for path in (f"/v1/roles/{role_id}/versions/%C2%B9",
                 f"/v1/roles/{role_id}/versions/%D9%A1",
                 f"/v1/roles/{role_id}/versions/99999999999999999999",
                 f"/v1/roles/{role_id}/versions/1/diff?against=99999999999999999999",
                 f"/v1/roles/{role_id}/versions/1/diff?against=%C2%B9",
                 f"/v1/packs/{pack.id}/versions/99999999999999999999",
                 f"/v1/packs/{pack.id}/versions/%C2%B9",
                 f"/v1/packs/{pack.id}/files?version=99999999999999999999"):
        response = client.get(path, headers=headers)
        assert response.status_code in (400, 404), (path, response.get_data())
        assert response.get_json()["error"]["code"] in (
            "validation_error", "version_not_found"), path
    assert client.get(f"/v1/roles/{role_id}/versions/1", headers=headers).status_code == 200


def test_a_console_form_with_nul_is_refused_as_a_page(app, console_client):
    owner = make_member(role="owner")
    browser = console_client(owner)
    response = browser.post("/settings/secrets", data={"name": "A\x00", "value": "x"})
    assert response.status_code == 400
    assert "NUL" in response.get_data(as_text=True)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/xml"])
def test_a_body_that_is_not_json_is_415(client, owner_headers, content_type):
    before = client.get("/v1/org", headers=owner_headers).get_json()
    response = client.patch("/v1/org", data='{"name": "Changed"}',
                            headers={**owner_headers, "Content-Type": content_type})
    assert response.status_code == 415
    error = response.get_json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert error["details"]["accepted"] == ["application/json"]
    assert client.get("/v1/org", headers=owner_headers).get_json() == before


def test_bodyless_posts_and_json_suffix_types_stay_valid(client, owner_headers):
    created = client.post("/v1/secrets", headers={**owner_headers,
                                                  "Content-Type": "application/merge+json"},
                          data='{"name": "OK_ONE", "value": "v"}')
    assert created.status_code == 201, created.get_data()
    # An archive-style POST with no body and no Content-Type at all.
    response = client.post("/v1/providers/prv_missing/archive", headers=owner_headers)
    assert response.status_code == 404


def test_a_pack_upload_route_takes_multipart_only(client, owner_headers):
    response = client.post("/v1/packs", headers=owner_headers, json={"name": "p"})
    assert response.status_code == 415
    assert response.get_json()["error"]["details"]["accepted"] == ["multipart/form-data"]


def test_a_route_whose_body_is_required_refuses_none(client, owner_headers):
    before = client.get("/v1/org", headers=owner_headers).get_json()
    response = client.patch("/v1/org", headers=owner_headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["details"]["fields"] == {
        "body": ["A request body is required."]}
    assert client.get("/v1/org", headers=owner_headers).get_json() == before
    empty_object = client.patch("/v1/org", headers=owner_headers, json={})
    assert empty_object.status_code == 200
