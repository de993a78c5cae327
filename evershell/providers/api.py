"""``/v1/providers``."""

from flask.views import MethodView

from evershell.access.principal import current_principal
from evershell.access.routes import Billing, declare
from evershell.access.scopes import Scope
from evershell.core.api import Blueprint, ErrorSchema
from evershell.core.errors import ErrorCode as E
from evershell.core.pagination import page_schema
from evershell.providers import checks, services
from evershell.providers.schemas import (
    ProviderCheckSchema,
    ProviderCreateSchema,
    ProviderListArgsSchema,
    ProviderSchema,
    ProviderUpdateSchema,
)

blp = Blueprint("providers", __name__, url_prefix="/v1/providers",
                description="Model providers: anthropic, openai, openai_compatible (any base "
                            "URL: vLLM, Ollama, llama.cpp), scripted (plays a stored script). "
                            "API keys are referenced as secrets, never stored here.")
NOT_FOUND = "provider_not_found"


@blp.route("")
class Providers(MethodView):
    @declare(Scope.PROVIDERS_READ, Billing.READ)
    @blp.arguments(ProviderListArgsSchema, location="query")
    @blp.response(200, page_schema(ProviderSchema, "ProviderPage"))
    def get(self, args):
        """List providers, newest first: active ones, or archived ones with
        `?archived=true`; `?kind=` narrows to one kind."""
        return services.list_providers(current_principal(), args["limit"], args["cursor"],
                                       archived=args["archived"], kind=args["kind"])

    @declare(Scope.PROVIDERS_WRITE, Billing.CREATE, action="provider.create")
    @blp.arguments(ProviderCreateSchema)
    @blp.response(201, ProviderSchema)
    @blp.alt_response(409, schema=ErrorSchema, description="name_taken")
    @blp.errors(E.NAME_TAKEN)
    def post(self, data):
        """Create a provider. Each kind has its own rules (see the fields); a base URL is
        checked against link-local, metadata and (by default) private addresses, and
        `api_key_secret_id` must name a secret of this organisation."""
        return services.create(current_principal(), data)


@blp.route("/<id:provider_id>")
class ProviderById(MethodView):
    @declare(Scope.PROVIDERS_READ, Billing.READ)
    @blp.response(200, ProviderSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    @blp.errors(E.PROVIDER_NOT_FOUND)
    def get(self, provider_id):
        """Get one provider, archived or not."""
        return services.get(current_principal(), provider_id)

    @declare(Scope.PROVIDERS_WRITE, Billing.CREATE, action="provider.update")
    @blp.arguments(ProviderUpdateSchema)
    @blp.response(200, ProviderSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorSchema,
                      description="name_taken, or provider_archived (unarchive first)")
    @blp.errors(E.PROVIDER_NOT_FOUND, E.NAME_TAKEN, E.PROVIDER_ARCHIVED)
    def patch(self, data, provider_id):
        """Change some fields; the others stay. `kind` cannot change. A `null`
        `base_url` of an anthropic or openai provider restores the default."""
        return services.update(current_principal(), provider_id, data)

    @declare(Scope.PROVIDERS_WRITE, Billing.WIND_DOWN, action="provider.delete")
    @blp.response(200, ProviderSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorSchema,
                      description="provider_in_use: a role still uses it")
    @blp.errors(E.PROVIDER_NOT_FOUND, E.PROVIDER_IN_USE)
    def delete(self, provider_id):
        """Delete a provider for good; answers with it as it was (`status` `deleted`).
        Archive instead to keep it for history."""
        return services.delete(current_principal(), provider_id)


@blp.route("/<id:provider_id>/archive", methods=["POST"])
@declare(Scope.PROVIDERS_WRITE, Billing.WIND_DOWN, action="provider.archive")
@blp.response(200, ProviderSchema)
@blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
@blp.errors(E.PROVIDER_NOT_FOUND)
def archive(provider_id):
    """Archive: listed only with `?archived=true`, refused to new roles and tasks
    (`provider_archived`), read-only until unarchived. Works in every billing posture."""
    return services.archive(current_principal(), provider_id)


@blp.route("/<id:provider_id>/unarchive", methods=["POST"])
@declare(Scope.PROVIDERS_WRITE, Billing.CREATE, action="provider.unarchive")
@blp.response(200, ProviderSchema)
@blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
@blp.errors(E.PROVIDER_NOT_FOUND)
def unarchive(provider_id):
    """Make an archived provider usable again."""
    return services.unarchive(current_principal(), provider_id)


@blp.route("/<id:provider_id>/check", methods=["POST"])
@declare(Scope.PROVIDERS_READ, Billing.READ)
@blp.response(200, ProviderCheckSchema)
@blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
@blp.errors(E.PROVIDER_NOT_FOUND)
def check(provider_id):
    """Test the connection: call the provider's model listing (through the same guarded
    client tasks use: the SSRF rules hold at connect time) and report reachability,
    whether the key is accepted, and whether each configured model is listed, with the
    latency. A failed check is still a 200: the report says what failed (`code` is the
    failure code a task would meet). Changes nothing; never 423."""
    return checks.check(current_principal(), provider_id)
