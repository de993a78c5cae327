"""The OpenAPI document tells the truth: schemathesis generates requests from
``/v1/openapi.json`` for every operation (event streams excepted), as an owner and as a
member, and fails on any 5xx, any error that is not the envelope, and any response whose
status, content type or body the document does not describe.

How it runs, and why: through the WSGI app directly (``schemathesis.openapi.from_wsgi``),
not a live gunicorn. Every request still goes through the whole Flask stack — routing,
the guard, the parser, the services, the real database and Redis — which is what the
document describes; what a live server would add is gunicorn's own handling of the
request line and headers, which has tests of its own. In-process it is several times
faster, so the run stays near a minute on each database, and a failure's traceback is in
this process's output.

The app under test has a database of its own (``sibling_database``): the fuzzer's
requests commit, and nothing they create can reach other tests, whose data lives in
rolled-back transactions of the shared test database. Generation is seeded and
derandomized, with a fixed number of examples per operation, so a run is reproducible
and bounded.

Not checked: that every schema-valid request is accepted (schemathesis'
``positive_data_acceptance``). Some refusals depend on state or content no schema can
state — a cursor this API issued, an expiry in the future, a secret that exists, a
private key its passphrase opens — and are documented as 400/404/409 instead.
"""

from __future__ import annotations

import os

import hypothesis
import pytest
import schemathesis
from flask_migrate import upgrade
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from evershell import create_app
from evershell.extensions import db
from tests.support.databases import sibling_database

pytestmark = pytest.mark.contract

EXAMPLES_PER_OPERATION = 12
SEED = 20240501


@pytest.fixture(scope="module")
def contract_app(app_config, tmp_path_factory):
    """The real app on a database of its own, with an org, an owner and a member, and
    an API key (template ``full``) for each; rate limiting out of the way."""
    url = sibling_database(os.environ.get("DATABASE_URL"), "contract",
                           tmp_path_factory.mktemp("contract-db"))
    app = create_app({**app_config, "DATABASE_URL": url,
                      "INSTANCE_DIR": str(tmp_path_factory.mktemp("contract-instance")),
                      "RATE_LIMIT_PER_MINUTE": 1_000_000, "RATE_LIMIT_BURST": 1_000_000})
    with app.app_context():
        upgrade()
        from tests.factories import make_api_key, make_member, make_org
        org = make_org("Contract", "contract")
        owner = make_member(org, role="owner", email="owner@contract.test")
        member = make_member(org, role="member", email="member@contract.test")
        app.config["CONTRACT_KEYS"] = {"owner": make_api_key(owner),
                                       "member": make_api_key(member)}
        db.session.remove()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="module")
def contract_schema(contract_app):
    config = SchemathesisConfig.from_dict({
        "seed": SEED,
        "generation": {"deterministic": True, "with-security-parameters": False},
    })
    return schemathesis.openapi.from_wsgi("/v1/openapi.json", contract_app, config=config)


@schemathesis.check
def error_is_the_envelope(ctx, response, case) -> None:
    """Every ``/v1`` error is ``{"error": {"code", "message", "request_id"}}``."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), \
        f"{response.status_code} answered with {content_type!r}, not the JSON envelope"
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert {"code", "message", "request_id"} <= set(body["error"]), body


def _operations(schema):
    for result in schema.get_all_operations():
        operation = result.ok()
        if "text/event-stream" in str(operation.definition.raw):
            continue  # event streams never end by themselves; they have their own tests
        yield operation


def _fuzz(operation, mode: GenerationMode, headers: dict[str, str]) -> str | None:
    """Run ``operation`` with generated cases; the first failure, described, or None."""
    failures: list[str] = []

    @hypothesis.settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True,
                         database=None, deadline=None, print_blob=False,
                         suppress_health_check=list(hypothesis.HealthCheck),
                         phases=[hypothesis.Phase.generate])
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        if failures:
            return
        try:
            case.call_and_validate(headers=headers,
                                   additional_checks=[error_is_the_envelope],
                                   excluded_checks=[positive_data_acceptance])
        except (Exception, BaseExceptionGroup) as exc:  # keep the first failure, move on
            failures.append(f"{case.method} {case.formatted_path} ({mode.value})\n"
                            f"    query={case.query} body={case.body!r}"[:600]
                            + f"\n    {exc}"[:1500])

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        pass  # nothing to make invalid (no parameters, no body)
    return failures[0] if failures else None


@pytest.mark.parametrize("who", ["owner", "member"])
def test_every_operation_answers_as_documented(contract_app, contract_schema, who):
    headers = {"Authorization": f"Bearer {contract_app.config['CONTRACT_KEYS'][who]}"}
    failures = []
    for operation in _operations(contract_schema):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failure = _fuzz(operation, mode, headers)
            if failure:
                failures.append(failure)
    assert not failures, f"{len(failures)} operation(s) answered off the document:\n\n" \
        + "\n\n".join(failures)


def test_a_fixed_path_beside_an_id_allows_only_its_own_methods(client):
    response = client.open("/v1/api-keys/templates", method="OPTIONS")
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert client.delete("/v1/api-keys/templates").status_code == 405


def test_every_guarded_operation_declares_bearer_auth_and_its_guard_errors(client):
    spec = client.get("/v1/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            codes = operation["x-error-codes"]
            event_stream = path.endswith("/events")  # SSE: EventSource sets no headers
            assert operation["security"] == [{"bearer": []}] + (
                [{"apiKeyQuery": []}] if event_stream else []), (method, path)
            assert "default" not in operation["responses"]
            assert {"401", "403", "429"} <= set(codes), (method, path)
            assert ("423" in codes) == (method != "get" and "billing_inactive" in
                                        codes.get("423", [])), (method, path)
            if "requestBody" in operation:
                assert {"400", "413", "415"} <= set(codes), (method, path)
            enum = operation["responses"]["401"]["content"]["application/json"]["schema"][
                "properties"]["error"]["properties"]["code"]["enum"]
            assert enum == ["unauthenticated"]
