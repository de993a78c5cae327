import marshmallow as ma

from evershell.access.models import Membership
from evershell.access.scopes import Role
from evershell.core.pagination import PageArgsSchema

ROLES = [r.value for r in Role]


class MemberSchema(ma.Schema):
    """A member (``mem_…``, status ``active``) or a pending invitation (``inv_…``,
    status ``invited``) in one shape; fields that do not apply are null."""

    id = ma.fields.String(metadata={"description": "mem_… for a member, inv_… for an "
                                                   "invitation"})
    status = ma.fields.String(metadata={
        "enum": ["active", "invited", "removed", "revoked", "accepted", "expired"],
        "description": "removed / revoked only in the answer to DELETE"})
    email = ma.fields.String()
    name = ma.fields.String(allow_none=True)
    role = ma.fields.String(metadata={"enum": ROLES})
    user_id = ma.fields.String(allow_none=True)
    invited_by_user_id = ma.fields.String(allow_none=True)
    invite_url = ma.fields.String(allow_none=True, metadata={
        "description": "The link to send the invited person (invitations only)"})
    expires_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()
    replaced = ma.fields.List(ma.fields.Nested(lambda: ReplacedInvitationSchema()),
                              allow_none=True, metadata={
        "description": "In the answer to an invite only: the pending invitations of the "
                       "same email this one revoked (their links no longer work)"})

    @ma.pre_dump
    def _flatten(self, item, **_kwargs):
        from evershell.members.services import invite_url, status_of
        row = {"id": item.id, "status": status_of(item), "role": item.role,
               "created_at": item.created_at, "user_id": None, "name": None,
               "invited_by_user_id": None, "invite_url": None, "expires_at": None,
               "replaced": getattr(item, "replaced", None)}
        if isinstance(item, Membership):
            row.update(email=item.user.email, name=item.user.name, user_id=item.user_id)
        else:
            row.update(email=item.email, invited_by_user_id=item.invited_by_user_id,
                       invite_url=invite_url(item), expires_at=item.expires_at)
        return row


class ReplacedInvitationSchema(ma.Schema):
    id = ma.fields.String()
    role = ma.fields.String(metadata={"enum": ROLES})
    created_at = ma.fields.DateTime()


class MemberListArgsSchema(PageArgsSchema):
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(
        ["active", "invited"]), metadata={"description": "Only members, or only invitations"})


class InviteSchema(ma.Schema):
    email = ma.fields.Email(required=True, validate=ma.validate.Length(min=3, max=320))

    @ma.pre_load
    def _trim_email(self, data, **_kwargs):
        """Pasted addresses often carry spaces; they are not part of the address."""
        if isinstance(data, dict) and isinstance(data.get("email"), str):
            data = {**data, "email": data["email"].strip()}
        return data
    role = ma.fields.String(required=True, validate=ma.validate.OneOf(ROLES))


class RoleChangeSchema(ma.Schema):
    role = ma.fields.String(required=True, validate=ma.validate.OneOf(ROLES))
