"""Request and response shapes. Responses carry metadata only: ``value_set`` / the set
material ``fields``, never a value. Values are checked in the services (size, NUL), so
a request that breaks a rule gets the same message from the API and the console."""

import marshmallow as ma

from evershell.core.pagination import PageArgsSchema
from evershell.secrets.material import KIND_FIELDS
from evershell.secrets.models import CredentialScope
from evershell.secrets.rules import MAX_DESCRIPTION, MAX_VALUE_BYTES, NAME_PATTERN

_NAME_DOC = {"pattern": NAME_PATTERN.pattern,
             "description": "An environment-variable name, unique per org"}
_VALUE_DOC = {"description": f"Write-only: stored encrypted, never returned. Text of at "
                             f"most {MAX_VALUE_BYTES // 1024} KiB (UTF-8), no NUL.",
              "writeOnly": True}


class SecretSchema(ma.Schema):
    id = ma.fields.String()
    name = ma.fields.String(metadata=_NAME_DOC)
    description = ma.fields.String()
    value_set = ma.fields.Function(lambda _secret: True, metadata={
        "description": "Always true: a secret always has a value, which no read returns"})
    last_rotated_at = ma.fields.DateTime(allow_none=True, metadata={
        "description": "When the value was last replaced; null if never since creation"})
    created_by_user_id = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class SecretListArgsSchema(PageArgsSchema):
    name = ma.fields.String(load_default=None, metadata={"description": "Exact name"})


class SecretCreateSchema(ma.Schema):
    name = ma.fields.String(required=True, metadata=_NAME_DOC)
    value = ma.fields.String(required=True, metadata=_VALUE_DOC)
    description = ma.fields.String(load_default=None, metadata={
        "description": f"At most {MAX_DESCRIPTION} characters"})


class SecretUpdateSchema(ma.Schema):
    value = ma.fields.String(load_default=None, metadata={
        **_VALUE_DOC, "description": "A new value rotates the secret. " +
                                     _VALUE_DOC["description"]})
    description = ma.fields.String(load_default=None)


_KINDS = list(KIND_FIELDS)
_SCOPES = [s.value for s in CredentialScope]
_MATERIAL_DOC = {
    "description": "Write-only, never returned. token: {token}; ssh_key: {private_key, "
                   "passphrase?} (PEM or OpenSSH); username_password: {username, password}. "
                   f"Each field at most {MAX_VALUE_BYTES // 1024} KiB.",
    "writeOnly": True}


class CredentialSchema(ma.Schema):
    id = ma.fields.String()
    name = ma.fields.String(metadata=_NAME_DOC)
    description = ma.fields.String()
    kind = ma.fields.String(metadata={"enum": _KINDS})
    scope = ma.fields.String(metadata={
        "enum": _SCOPES, "description": "user: owned by owner_user_id; org: org-wide"})
    owner_user_id = ma.fields.String(allow_none=True)
    created_by_user_id = ma.fields.String(allow_none=True)
    fields = ma.fields.List(ma.fields.String(), metadata={
        "description": "Which material fields are set (their values are never returned)"})
    last_rotated_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class CredentialListArgsSchema(PageArgsSchema):
    scope = ma.fields.String(load_default=None, validate=ma.validate.OneOf(_SCOPES))
    kind = ma.fields.String(load_default=None, validate=ma.validate.OneOf(_KINDS))
    name = ma.fields.String(load_default=None, metadata={"description": "Exact name"})


def _material_by_kind() -> dict:
    """The fields each kind's material needs, as the services enforce them."""
    variants = []
    for kind, (required, optional) in KIND_FIELDS.items():
        variants.append({"properties": {
            "kind": {"const": kind},
            "material": {"type": "object", "required": list(required),
                         "properties": {f: {"type": "string", "minLength": 1}
                                        for f in required + optional},
                         "additionalProperties": False}}})
    return {"oneOf": variants}


class CredentialCreateSchema(ma.Schema):
    class Meta:
        openapi = _material_by_kind()

    name = ma.fields.String(required=True, metadata=_NAME_DOC)
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(_KINDS))
    scope = ma.fields.String(load_default=CredentialScope.USER.value,
                             validate=ma.validate.OneOf(_SCOPES), metadata={
                                 "description": "user (default): yours; org: org-wide, "
                                                "needs credentials:write"})
    material = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(),
                              required=True, metadata=_MATERIAL_DOC)
    description = ma.fields.String(load_default=None)


class CredentialUpdateSchema(ma.Schema):
    name = ma.fields.String(load_default=None, metadata=_NAME_DOC)
    description = ma.fields.String(load_default=None)
    material = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(),
                              load_default=None, metadata={
                                  **_MATERIAL_DOC,
                                  "description": "New material for the credential's kind "
                                                 "rotates it. " + _MATERIAL_DOC["description"]})
