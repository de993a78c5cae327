"""OpenAPI 3.1 at /v1/openapi.json and Swagger UI at /v1/docs, with no internet."""

import re

from evershell.core.errors import ErrorCode


def test_openapi_is_3_1_and_documents_the_error_envelope(client):
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"] == "3.1.0"
    schemas = spec["components"]["schemas"]
    envelope = schemas["Error"]
    assert envelope["required"] == ["error"]
    body = schemas["ErrorBody"]
    assert set(body["required"]) == {"code", "message", "request_id"}
    assert set(body["properties"]["code"]["enum"]) == {c.value for c in ErrorCode}


def test_swagger_ui_is_served_from_our_static_assets(client):
    page = client.get("/v1/docs").get_data(as_text=True)
    assert "/v1/openapi.json" in page
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(a.startswith("/static/vendor/swagger-ui/") for a in assets)
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


def test_health_needs_no_auth(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"ok": True}
