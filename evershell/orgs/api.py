"""``/v1/me`` and ``/v1/org``."""

from flask.views import MethodView

from evershell.access.principal import current_principal
from evershell.access.routes import AUTHENTICATED, Billing, declare
from evershell.access.scopes import Scope
from evershell.core.api import Blueprint
from evershell.orgs import services
from evershell.orgs.schemas import MeSchema, OrgSchema, OrgUpdateSchema

blp = Blueprint("org", __name__, url_prefix="/v1", description="The caller and their org.")


@blp.route("/me", methods=["GET"])
@declare(AUTHENTICATED, Billing.READ)
@blp.response(200, MeSchema)
def me():
    """Who is calling: principal, org, role, effective scopes, credential shape."""
    principal = current_principal()
    return {"user_id": principal.user_id, "email": principal.email,
            "org": services.get_org(principal.org_id), "role": principal.role.value,
            "scopes": sorted(principal.scopes), "credential_shape": principal.shape.value,
            "api_key_id": principal.api_key_id}


@blp.route("/org")
class CurrentOrg(MethodView):
    @declare(Scope.ORG_READ, Billing.READ)
    @blp.response(200, OrgSchema)
    def get(self):
        """The caller's organisation and its billing posture."""
        return services.get_org(current_principal().org_id)

    @declare(Scope.ORG_WRITE, Billing.CREATE, action="org.update")
    @blp.arguments(OrgUpdateSchema)
    @blp.response(200, OrgSchema)
    def patch(self, data):
        """Rename the organisation. (Billing posture is set by the operator's CLI.)"""
        return services.update_org(current_principal(), data)
