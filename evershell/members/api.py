"""``/v1/memberships``."""

from flask.views import MethodView

from evershell.access.principal import current_principal
from evershell.access.routes import Billing, declare
from evershell.access.scopes import Scope
from evershell.core.api import Blueprint, ErrorSchema
from evershell.core.errors import ErrorCode as E
from evershell.core.pagination import page_schema
from evershell.members import services
from evershell.members.schemas import (
    InviteSchema,
    MemberListArgsSchema,
    MemberSchema,
    RoleChangeSchema,
)

blp = Blueprint("memberships", __name__, url_prefix="/v1/memberships",
                description="Members of the organisation and their pending invitations.")


@blp.route("")
class Memberships(MethodView):
    @declare(Scope.MEMBERS_READ, Billing.READ)
    @blp.arguments(MemberListArgsSchema, location="query")
    @blp.response(200, page_schema(MemberSchema, "MemberPage"))
    def get(self, args):
        """List members and pending invitations, newest first.

        Both kinds are in one list: member ids (`mem_…`) and invitation ids (`inv_…`)
        are time-sortable, so they are merged by creation time and `next_cursor` is the
        last item's id. `?status=active` lists only members, `?status=invited` only
        pending (unexpired) invitations."""
        return services.list_members(current_principal(), args["limit"], args["cursor"],
                                     status=args["status"])

    @declare(Scope.MEMBERS_WRITE, Billing.CREATE, action="member.invite")
    @blp.arguments(InviteSchema)
    @blp.response(201, MemberSchema)
    @blp.alt_response(409, schema=ErrorSchema,
                      description="already_member; conflict when the same email is being "
                                  "invited concurrently and the retry also lost")
    @blp.errors(E.ALREADY_MEMBER, E.CONFLICT)
    def post(self, data):
        """Invite an email with a role. The invitation (7 days) is claimed when that
        verified email signs in; send the person `invite_url`. A pending invitation for
        the same email is revoked and replaced: its link stops working, the new one has
        the role given here, and `replaced` lists what was revoked."""
        return services.invite(current_principal(), data["email"], data["role"])


@blp.route("/<id:membership_id>")
class MembershipById(MethodView):
    @declare(Scope.MEMBERS_WRITE, Billing.CREATE, action="member.role_change")
    @blp.arguments(RoleChangeSchema)
    @blp.response(200, MemberSchema)
    @blp.alt_response(404, schema=ErrorSchema,
                      description="membership_not_found or invitation_not_found")
    @blp.alt_response(409, schema=ErrorSchema, description="last_owner")
    @blp.errors(E.MEMBERSHIP_NOT_FOUND, E.INVITATION_NOT_FOUND, E.LAST_OWNER)
    def patch(self, data, membership_id):
        """Change a member's role, or a pending invitation's (`inv_…`) role. The last
        owner cannot be demoted."""
        return services.change_role(current_principal(), membership_id, data["role"])

    @declare(Scope.MEMBERS_WRITE, Billing.WIND_DOWN, action="member.remove")
    @blp.response(200, MemberSchema)
    @blp.alt_response(404, schema=ErrorSchema,
                      description="membership_not_found or invitation_not_found")
    @blp.alt_response(409, schema=ErrorSchema, description="last_owner")
    @blp.errors(E.MEMBERSHIP_NOT_FOUND, E.INVITATION_NOT_FOUND, E.LAST_OWNER)
    def delete(self, membership_id):
        """Remove a member: their console sessions end and their API keys stop working
        at once. An `inv_…` id revokes the invitation. Answers 200 with the object as it
        was, `status` `removed` or `revoked`. The last owner cannot be removed (or
        leave)."""
        return services.remove(current_principal(), membership_id)
