import marshmallow as ma

from evershell.access.scopes import KeyTemplate, Scope


class ApiKeySchema(ma.Schema):
    id = ma.fields.String(dump_only=True)
    name = ma.fields.String()
    template = ma.fields.String(allow_none=True)
    scopes = ma.fields.List(ma.fields.String())
    created_by_user_id = ma.fields.String()
    prefix = ma.fields.Function(lambda k: "sk_…" + k.last_four,
                                metadata={"description": "How the key ends, to tell keys apart"})
    status = ma.fields.Function(lambda k: _status(k),
                                metadata={"enum": ["active", "revoked", "expired"]})
    expires_at = ma.fields.DateTime(allow_none=True)
    revoked_at = ma.fields.DateTime(allow_none=True)
    last_used_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()


def _status(api_key) -> str:
    from evershell.apikeys.services import status
    return status(api_key)


class ApiKeyCreatedSchema(ApiKeySchema):
    key = ma.fields.String(metadata={
        "description": "The secret, shown this once; only a hash is stored."})


class ApiKeyCreateSchema(ma.Schema):
    """Exactly one of ``template`` and ``scopes``."""

    class Meta:
        openapi = {"oneOf": [{"required": ["template"]}, {"required": ["scopes"]}]}

    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200),
                            metadata={"pattern": r"\S"})
    template = ma.fields.Enum(KeyTemplate, by_value=True, load_default=None, allow_none=False)
    scopes = ma.fields.List(ma.fields.Enum(Scope, by_value=True), load_default=None,
                            allow_none=False, validate=ma.validate.Length(min=1), metadata={
                                "description": "Only scopes the creator holds (else 403)"})
    expires_at = ma.fields.AwareDateTime(load_default=None, default_timezone=None, metadata={
        "description": "In the future, with a timezone; default: never"})

    @ma.validates_schema
    def _template_xor_scopes(self, data, **_kwargs):
        if (data.get("template") is None) == (data.get("scopes") is None):
            raise ma.ValidationError("Give exactly one of template or scopes.", "template")


class ApiKeyVerifySchema(ma.Schema):
    key = ma.fields.String(required=True)


class ApiKeyVerificationSchema(ma.Schema):
    valid = ma.fields.Boolean()
    status = ma.fields.String(metadata={
        "enum": ["active", "revoked", "expired", "creator_removed", "unknown"]})
    key_id = ma.fields.String()
    name = ma.fields.String()
    created_by_user_id = ma.fields.String()
    scopes = ma.fields.List(ma.fields.String())
    expires_at = ma.fields.DateTime(allow_none=True)


class TemplateSchema(ma.Schema):
    name = ma.fields.String()
    description = ma.fields.String()
    scopes = ma.fields.List(ma.fields.String())


class TemplateListSchema(ma.Schema):
    data = ma.fields.List(ma.fields.Nested(TemplateSchema))
