"""``?api_key=sk_…`` works on event-stream routes only; JWTs never ride in a query string."""

from __future__ import annotations

import pytest

from evershell import create_app
from evershell.access.principal import current_principal
from evershell.access.routes import Billing, declare
from evershell.access.scopes import Scope
from evershell.core.api import Blueprint
from tests.factories import make_api_key, make_member


@pytest.fixture(scope="module")
def sse_app(app_config):
    app = create_app(dict(app_config))
    blp = Blueprint("probe_sse", __name__, url_prefix="/v1/probe")

    @blp.get("/events")
    @declare(Scope.ORG_READ, Billing.READ, sse=True)
    def events():
        return {"user_id": current_principal().user_id}

    app.extensions["evershell-api"].register_blueprint(blp)
    return app


def test_api_key_in_query_string_is_accepted_on_sse_routes(app, sse_app):
    with sse_app.app_context():
        member = make_member(role="member")
        secret = make_api_key(member)
        client = sse_app.test_client()
        response = client.get(f"/v1/probe/events?api_key={secret}")
        assert response.status_code == 200
        assert response.get_json() == {"user_id": member.user_id}
        assert client.get("/v1/probe/events?api_key=sk_forged").status_code == 401
        assert client.get("/v1/probe/events?api_key=eyJhbGciOi.x.y").status_code == 401
        assert client.get(f"/v1/me?api_key={secret}").status_code == 401
