"""``/v1/api-keys``."""

from flask.views import MethodView

from evershell.access.principal import current_principal
from evershell.access.routes import Billing, declare
from evershell.access.scopes import Scope
from evershell.apikeys import services
from evershell.apikeys.schemas import (
    ApiKeyCreatedSchema,
    ApiKeyCreateSchema,
    ApiKeySchema,
    ApiKeyVerificationSchema,
    ApiKeyVerifySchema,
    TemplateListSchema,
)
from evershell.core.api import Blueprint
from evershell.core.errors import ErrorCode as E
from evershell.core.pagination import PageArgsSchema, page_schema

blp = Blueprint("api_keys", __name__, url_prefix="/v1/api-keys",
                description="API keys: the automation credential. Secrets are shown once.")
S = Scope
READ = (S.API_KEYS_READ, S.API_KEYS_READ_OWN)
WRITE = (S.API_KEYS_WRITE, S.API_KEYS_WRITE_OWN)


@blp.route("")
class ApiKeys(MethodView):
    @declare(READ, Billing.READ)
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_schema(ApiKeySchema, "ApiKeyPage"))
    def get(self, args):
        """List API keys (your own, or the org's with api_keys:read)."""
        return services.list_keys(current_principal(), args["limit"], args["cursor"])

    @declare(WRITE, Billing.CREATE, action="api_key.create")
    @blp.arguments(ApiKeyCreateSchema)
    @blp.response(201, ApiKeyCreatedSchema)
    def post(self, data):
        """Create an API key from a template or an explicit scope list; the secret is
        returned once."""
        api_key, secret = services.create(
            current_principal(), data["name"],
            template=data["template"].value if data["template"] else None,
            scopes=[s.value for s in data["scopes"]] if data["scopes"] is not None else None,
            expires_at=data["expires_at"])
        api_key.key = secret
        return api_key


@blp.route("/<id:key_id>")
class ApiKeyById(MethodView):
    @declare(READ, Billing.READ)
    @blp.response(200, ApiKeySchema)
    @blp.errors(E.API_KEY_NOT_FOUND)
    def get(self, key_id):
        """Get one API key (never its secret)."""
        return services.get(current_principal(), key_id)

    @declare(WRITE, Billing.WIND_DOWN, action="api_key.revoke")
    @blp.response(200, ApiKeySchema)
    @blp.errors(E.API_KEY_NOT_FOUND)
    def delete(self, key_id):
        """Revoke an API key; it stops working at once."""
        return services.revoke(current_principal(), key_id)


@blp.route("/verify", methods=["POST"])
@declare(READ, Billing.READ)
@blp.arguments(ApiKeyVerifySchema)
@blp.response(200, ApiKeyVerificationSchema)
def verify(data):
    """Is this key valid in the caller's org; whose; which effective scopes."""
    return services.verify(current_principal(), data["key"])


@blp.route("/templates", methods=["GET"])
@declare(READ, Billing.READ)
@blp.response(200, TemplateListSchema)
def templates():
    """The permission templates, with the scopes each would grant the caller."""
    return {"data": services.templates(current_principal())}
