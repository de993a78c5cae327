import marshmallow as ma

from evershell.core.pagination import PageArgsSchema
from evershell.providers.models import ProviderKind
from evershell.providers.script import ScriptStepSchema

KINDS = [k.value for k in ProviderKind]
_BASE_URL = ("http(s) URL of the model API. Default for anthropic: https://api.anthropic.com; "
             "for openai: https://api.openai.com/v1; required for openai_compatible; none "
             "for scripted. Link-local and cloud metadata addresses are refused; loopback "
             "and private addresses unless the operator sets "
             "EVERSHELL_ALLOW_PRIVATE_NETWORKS.")
_SECRET = ("Id of the secret (sec_…) holding the API key, in the same org. Required for "
           "anthropic and openai, optional for openai_compatible, none for scripted.")
_MODELS = "Model names this provider serves (roles pick one). Scripted default: [\"scripted\"]."
_SCRIPT = ("Scripted providers only: the assistant turns played in order, each with "
           "`text`, `tool_calls` or both.")


def _status(provider) -> str:
    from evershell.providers.services import status_of
    return status_of(provider)


class ProviderSchema(ma.Schema):
    id = ma.fields.String(dump_only=True)
    name = ma.fields.String()
    kind = ma.fields.String(metadata={"enum": KINDS})
    status = ma.fields.Function(_status, metadata={
        "enum": ["active", "archived", "deleted"], "description": "deleted only in the "
                                                                  "answer to DELETE"})
    base_url = ma.fields.String(allow_none=True, metadata={"description": _BASE_URL})
    api_key_secret_id = ma.fields.String(allow_none=True, metadata={"description": _SECRET})
    models = ma.fields.List(ma.fields.String(), metadata={"description": _MODELS})
    script = ma.fields.List(ma.fields.Nested(ScriptStepSchema), allow_none=True,
                            metadata={"description": _SCRIPT})
    archived_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class ProviderListArgsSchema(PageArgsSchema):
    archived = ma.fields.Boolean(load_default=False, metadata={
        "description": "false (default): active providers; true: archived ones"})
    kind = ma.fields.String(load_default=None, validate=ma.validate.OneOf(KINDS))


class ProviderCreateSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200),
                            metadata={"description": "Unique in the organisation"})
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(KINDS))
    base_url = ma.fields.String(allow_none=True, metadata={"description": _BASE_URL})
    api_key_secret_id = ma.fields.String(allow_none=True, metadata={"description": _SECRET})
    models = ma.fields.List(ma.fields.String(), allow_none=True,
                            metadata={"description": _MODELS})
    script = ma.fields.List(ma.fields.Nested(ScriptStepSchema), allow_none=True,
                            metadata={"description": _SCRIPT})


class ProviderUpdateSchema(ProviderCreateSchema):
    """Any subset of the fields; the result must still satisfy the kind's rules."""

    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    kind = ma.fields.String(metadata={"description": "Cannot change; accepted only when "
                                                     "equal to the current kind"})


class ModelCheckSchema(ma.Schema):
    name = ma.fields.String()
    available = ma.fields.Boolean(allow_none=True, metadata={
        "description": "Listed by the provider; null when the listing could not be read"})


class ProviderCheckSchema(ma.Schema):
    provider_id = ma.fields.String()
    kind = ma.fields.String(metadata={"enum": KINDS})
    base_url = ma.fields.String(allow_none=True)
    ok = ma.fields.Boolean(metadata={
        "description": "Reachable, the key accepted and every configured model listed"})
    reachable = ma.fields.Boolean(allow_none=True, metadata={
        "description": "The provider answered at all (null for scripted providers)"})
    authenticated = ma.fields.Boolean(allow_none=True, metadata={
        "description": "The API key was accepted; null when that could not be told"})
    code = ma.fields.String(allow_none=True, metadata={
        "description": "The failure code a task would meet (provider_auth_failed, "
                       "provider_unreachable, …); null when the check passed"})
    message = ma.fields.String(metadata={"description": "What happened, in a sentence"})
    latency_ms = ma.fields.Integer(allow_none=True, metadata={
        "description": "How long the model listing took"})
    listed_models = ma.fields.Integer(allow_none=True, metadata={
        "description": "How many models the provider listed"})
    models = ma.fields.List(ma.fields.Nested(ModelCheckSchema), metadata={
        "description": "Each configured model, and whether the provider lists it"})
    checked_at = ma.fields.DateTime()
