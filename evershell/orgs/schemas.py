import marshmallow as ma

from evershell.orgs.models import BillingPosture


class OrgSchema(ma.Schema):
    id = ma.fields.String()
    slug = ma.fields.String()
    name = ma.fields.String()
    billing_posture = ma.fields.String(metadata={"enum": [p.value for p in BillingPosture]})
    trial_ends_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class OrgUpdateSchema(ma.Schema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))


class MeSchema(ma.Schema):
    user_id = ma.fields.String()
    email = ma.fields.String()
    org = ma.fields.Nested(OrgSchema)
    role = ma.fields.String(metadata={"enum": ["owner", "operator", "member"]})
    scopes = ma.fields.List(ma.fields.String())
    credential_shape = ma.fields.String(metadata={"enum": ["session_jwt", "api_key", "cookie"]})
    api_key_id = ma.fields.String(allow_none=True)
