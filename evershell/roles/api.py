"""``/v1/roles`` and ``/v1/capabilities``."""

from flask.views import MethodView

from evershell.access.principal import current_principal
from evershell.access.routes import Billing, declare
from evershell.access.scopes import Scope
from evershell.core.api import Blueprint, ErrorSchema
from evershell.core.errors import ErrorCode as E
from evershell.core.pagination import PageArgsSchema, page_schema
from evershell.roles import capset, history, services
from evershell.roles.schemas import (
    CapabilityRegistrySchema,
    DraftSchema,
    ExplainArgsSchema,
    ExplanationSchema,
    RoleCreateSchema,
    RoleExplanationSchema,
    RoleListArgsSchema,
    RoleSchema,
    RoleUpdateSchema,
    RoleVersionSchema,
    VersionDiffArgsSchema,
    VersionDiffSchema,
)

blp = Blueprint("roles", __name__, url_prefix="/v1/roles",
                description="Agent roles: provider and model, system prompt, capabilities "
                            "(caps.yaml), content packs and task defaults. Every change is "
                            "a new immutable version.")
capabilities_blp = Blueprint("capabilities", __name__, url_prefix="/v1/capabilities",
                             description="The tools and limits a caps.yaml may name.")
READ, WRITE = Scope.ROLES_READ, Scope.ROLES_WRITE
NOT_FOUND = "role_not_found"
INVALID_CAPS = "invalid_capabilities: caps.yaml does not compile; `details.errors` lists " \
               "every problem as {line, column, path, reason}, the first one also at the top"
REFERENCES_404 = "role_not_found, provider_not_found or pack_not_found"
REFERENCES_409 = "name_taken, provider_archived or pack_archived"
# What checking a role's provider, model, packs and caps.yaml can refuse.
REFERENCE_ERRORS = (E.PROVIDER_NOT_FOUND, E.PACK_NOT_FOUND, E.NAME_TAKEN, E.PROVIDER_ARCHIVED,
                    E.PACK_ARCHIVED, E.INVALID_CAPABILITIES)


@blp.route("")
class Roles(MethodView):
    @declare(READ, Billing.READ)
    @blp.arguments(RoleListArgsSchema, location="query")
    @blp.response(200, page_schema(RoleSchema, "RolePage"))
    def get(self, args):
        """List roles, newest first, with their current versions: active ones, or
        archived ones with `?archived=true`."""
        return services.list_roles(current_principal(), args["limit"], args["cursor"],
                                   archived=args["archived"])

    @declare(WRITE, Billing.CREATE, action="role.create")
    @blp.arguments(RoleCreateSchema)
    @blp.response(201, RoleSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="provider_not_found or "
                                                           "pack_not_found")
    @blp.alt_response(409, schema=ErrorSchema, description=REFERENCES_409)
    @blp.alt_response(422, schema=ErrorSchema, description=INVALID_CAPS)
    @blp.errors(*REFERENCE_ERRORS)
    def post(self, data):
        """Create a role: version 1. The provider must serve the model."""
        return services.create(current_principal(), data)


@blp.route("/<id:role_id>")
class RoleById(MethodView):
    @declare(READ, Billing.READ)
    @blp.response(200, RoleSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    @blp.errors(E.ROLE_NOT_FOUND)
    def get(self, role_id):
        """Get a role with its current version, compiled capabilities included."""
        return services.get(current_principal(), role_id)

    @declare(WRITE, Billing.CREATE, action="role.update")
    @blp.arguments(RoleUpdateSchema)
    @blp.response(200, RoleSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=REFERENCES_404)
    @blp.alt_response(409, schema=ErrorSchema,
                      description=REFERENCES_409 + ", or role_archived (unarchive first)")
    @blp.alt_response(422, schema=ErrorSchema, description=INVALID_CAPS)
    @blp.errors(E.ROLE_NOT_FOUND, E.ROLE_ARCHIVED, *REFERENCE_ERRORS)
    def patch(self, data, role_id):
        """Change some fields: writes version n+1 from the current version and these
        fields. A request that changes nothing writes no version."""
        return services.update(current_principal(), role_id, data)

    @declare(WRITE, Billing.WIND_DOWN, action="role.delete")
    @blp.response(200, RoleSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    @blp.errors(E.ROLE_NOT_FOUND)
    def delete(self, role_id):
        """Delete a role and all its versions; answers with it as it was (`status`
        `deleted`). Archive instead to keep its history."""
        return services.delete(current_principal(), role_id)


@blp.route("/<id:role_id>/archive", methods=["POST"])
@declare(WRITE, Billing.WIND_DOWN, action="role.archive")
@blp.response(200, RoleSchema)
@blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
@blp.errors(E.ROLE_NOT_FOUND)
def archive(role_id):
    """Archive: listed only with `?archived=true`, refused to new tasks
    (`role_archived`), read-only until unarchived. Works in every billing posture."""
    return services.archive(current_principal(), role_id)


@blp.route("/<id:role_id>/unarchive", methods=["POST"])
@declare(WRITE, Billing.CREATE, action="role.unarchive")
@blp.response(200, RoleSchema)
@blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
@blp.errors(E.ROLE_NOT_FOUND)
def unarchive(role_id):
    """Make an archived role usable again."""
    return services.unarchive(current_principal(), role_id)


@blp.route("/<id:role_id>/versions", methods=["GET"])
@declare(READ, Billing.READ)
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, page_schema(RoleVersionSchema, "RoleVersionPage"))
@blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
@blp.errors(E.ROLE_NOT_FOUND)
def versions(args, role_id):
    """List a role's versions, newest first."""
    return history.list_versions(current_principal(), role_id, args["limit"], args["cursor"])


@blp.route("/<id:role_id>/versions/<number>", methods=["GET"])
@declare(READ, Billing.READ)
@blp.response(200, RoleVersionSchema)
@blp.alt_response(404, schema=ErrorSchema, description="role_not_found or version_not_found")
@blp.errors(E.ROLE_NOT_FOUND, E.VERSION_NOT_FOUND)
def version(role_id, number):
    """Get one version of a role, as it was written."""
    return history.get_version(current_principal(), role_id, number)


@blp.route("/<id:role_id>/versions/<number>/diff", methods=["GET"])
@declare(READ, Billing.READ)
@blp.arguments(VersionDiffArgsSchema, location="query")
@blp.response(200, VersionDiffSchema)
@blp.alt_response(404, schema=ErrorSchema, description="role_not_found or version_not_found")
@blp.errors(E.ROLE_NOT_FOUND, E.VERSION_NOT_FOUND)
def version_diff(args, role_id, number):
    """What changed from version `?against=` (default: the one before) to this one: the
    compiled capability sets entry by entry (added / removed / changed, per path), the
    other fields value by value, and unified diffs of caps.yaml and the system prompt."""
    return history.diff_versions(current_principal(), role_id, number, args["against"])


@blp.route("/<id:role_id>/capabilities/explain", methods=["POST"])
@declare(READ, Billing.READ)
@blp.arguments(ExplainArgsSchema, required=False)
@blp.response(200, RoleExplanationSchema)
@blp.alt_response(404, schema=ErrorSchema, description="role_not_found or version_not_found")
@blp.alt_response(422, schema=ErrorSchema, description=INVALID_CAPS)
@blp.errors(E.ROLE_NOT_FOUND, E.VERSION_NOT_FOUND, E.INVALID_CAPABILITIES)
def explain(data, role_id):
    """Explain the role's capabilities: the compiled set of the current version (or
    `version`), which settings are defaults, and notes. With `capabilities`, compile
    that draft without saving anything and report its changes from the version. Reads
    only: never 423."""
    return history.explain(current_principal(), role_id, data["capabilities"],
                           data["version"])


@capabilities_blp.route("", methods=["GET"])
@declare(READ, Billing.READ)
@capabilities_blp.response(200, CapabilityRegistrySchema)
def registry():
    """Everything a caps.yaml may name: tools with descriptions, limits with defaults
    and ranges, network and checkpoint modes, where env values may come from."""
    return capset.registry()


@capabilities_blp.route("/explain", methods=["POST"])
@declare(READ, Billing.READ)
@capabilities_blp.arguments(DraftSchema)
@capabilities_blp.response(200, ExplanationSchema)
@capabilities_blp.alt_response(422, schema=ErrorSchema, description=INVALID_CAPS)
@blp.errors(E.INVALID_CAPABILITIES)
def explain_draft(data):
    """Compile a caps.yaml without a role (e.g. in CI, before creating one): the compiled
    set, which settings are defaults, notes; 422 with every problem when it fails."""
    return history.explain_text(data["capabilities"])
