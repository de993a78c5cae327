"""Every /v1 error uses the envelope; console errors stay HTML; request ids everywhere."""

from __future__ import annotations

import logging

import marshmallow as ma
import pytest
from flask import Blueprint as FlaskBlueprint

from evershell import create_app
from evershell.core.api import Blueprint
from evershell.core.errors import ErrorCode, EvershellError


class ThingSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1))
    count = ma.fields.Integer(required=True)


@pytest.fixture(scope="module")
def probe_app(app_config):
    """An app with a few routes that exist only to exercise the error mapping."""
    app = create_app(dict(app_config, MAX_CONTENT_LENGTH=1024))
    blp = Blueprint("probe", __name__, url_prefix="/v1/probe")

    @blp.post("/things")
    @blp.arguments(ThingSchema)
    @blp.response(201, ThingSchema)
    def create_thing(data):
        return data

    @blp.get("/boom")
    def boom():
        raise RuntimeError("kaboom with internals")

    @blp.get("/conflict")
    def conflict():
        raise EvershellError(ErrorCode.CONFLICT, "Already there.", 409, {"hint": "x"})

    app.extensions["evershell-api"].register_blueprint(blp)
    console = FlaskBlueprint("probe_console", __name__)

    @console.get("/probe-console-boom")
    def console_boom():
        raise RuntimeError("console kaboom")

    app.register_blueprint(console)
    return app


@pytest.fixture
def probe(probe_app):
    return probe_app.test_client()


def assert_envelope(response, status, code):
    assert response.status_code == status
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["X-Request-Id"]
    return error


def test_unknown_v1_route_is_404_envelope(client):
    assert_envelope(client.get("/v1/no-such-thing"), 404, "not_found")


def test_wrong_method_is_405_envelope_keeping_allow(probe):
    response = probe.delete("/v1/probe/things")
    assert_envelope(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_malformed_json_is_400_validation_error(probe):
    response = probe.post("/v1/probe/things", data="{not json",
                          content_type="application/json")
    error = assert_envelope(response, 400, "validation_error")
    assert "body" in error["details"]["fields"]


def test_schema_violation_is_400_with_per_field_map(probe):
    response = probe.post("/v1/probe/things", json={"name": "", "count": "many", "extra": 1})
    fields = assert_envelope(response, 400, "validation_error")["details"]["fields"]
    assert set(fields) == {"name", "count", "extra"}


def test_valid_body_passes_through(probe):
    response = probe.post("/v1/probe/things", json={"name": "a", "count": 2})
    assert response.status_code == 201
    assert response.get_json() == {"name": "a", "count": 2}


def test_oversized_body_is_413_envelope(probe):
    response = probe.post("/v1/probe/things", data="x" * 4096, content_type="application/json")
    assert_envelope(response, 413, "payload_too_large")


def test_unhandled_exception_is_500_envelope_without_internals(probe, capsys):
    response = probe.get("/v1/probe/boom")
    error = assert_envelope(response, 500, "internal_error")
    assert "kaboom" not in response.get_data(as_text=True)
    # The log line carries the same request id, so support can find the traceback.
    assert error["request_id"] in capsys.readouterr().err


def test_evershell_error_keeps_code_status_and_details(probe):
    error = assert_envelope(probe.get("/v1/probe/conflict"), 409, "conflict")
    assert error["details"] == {"hint": "x"}


def test_console_404_is_an_html_page(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "<html" in response.get_data(as_text=True).lower()


def test_console_500_is_an_html_page_with_reference(probe):
    response = probe.get("/probe-console-boom")
    assert response.status_code == 500
    assert response.mimetype == "text/html"
    body = response.get_data(as_text=True)
    assert response.headers["X-Request-Id"] in body
    assert "console kaboom" not in body


@pytest.mark.parametrize("path", ["/health", "/v1/nothing", "/nothing"])
def test_every_response_carries_a_request_id(client, path):
    assert len(client.get(path).headers["X-Request-Id"]) >= 16


def test_sane_incoming_request_id_is_echoed(client):
    response = client.get("/v1/nothing", headers={"X-Request-Id": "trace-1234abcd"})
    assert response.headers["X-Request-Id"] == "trace-1234abcd"
    assert response.get_json()["error"]["request_id"] == "trace-1234abcd"


@pytest.mark.parametrize("bad", ["short", "has spaces in it", "x" * 200, "<script>alert</script>"])
def test_insane_incoming_request_id_is_replaced(client, bad):
    response = client.get("/health", headers={"X-Request-Id": bad})
    assert response.headers["X-Request-Id"] != bad


def test_log_lines_carry_the_request_id(probe_app, capsys):
    with probe_app.test_request_context("/x", headers={"X-Request-Id": "req-logline-42"}):
        probe_app.preprocess_request()
        logging.getLogger("evershell.test").warning("hello")
    assert "[req req-logline-42] hello" in capsys.readouterr().err
