import marshmallow as ma

from evershell.core.pagination import PageArgsSchema
from evershell.roles import rules
from evershell.roles.models import THINKING_EFFORTS

_CAPS = ("caps.yaml text: tools, network, limits, env, checkpoints (see GET "
         "/v1/capabilities). Empty means the defaults: no tools, no network, default "
         "limits. A caps.yaml that does not compile is 422 invalid_capabilities with the "
         "line, column and reason of every problem.")
_PACKS = f"Ids of content packs (pack_…) mounted read-only at /data/packs/<name>/; at " \
         f"most {rules.MAX_PACKS}, none archived."
_EFFORT = "Default thinking effort of this role's tasks."
_CONTINUATIONS = "Default max_continuations of this role's tasks, from {} to {}.".format(
    *rules.MAX_CONTINUATIONS[:2])
_CONTEXT = "Default max_context_tokens of this role's tasks, from {} to {}.".format(
    *rules.MAX_CONTEXT_TOKENS[:2])


def _flatten(state) -> dict:
    from evershell.roles.services import status_of
    role, version = state.role, state.version
    return {
        **state.values(), "id": role.id, "role_id": role.id, "version": version.number,
        "status": status_of(role), "current": state.current,
        "compiled_capabilities": version.capabilities, "archived_at": role.archived_at,
        "created_at": role.created_at, "updated_at": role.updated_at,
        "version_created_at": version.created_at,
        "version_created_by_user_id": version.created_by_user_id,
    }


class _VersionFields(ma.Schema):
    version = ma.fields.Integer(metadata={"description": "Version number: 1, 2, 3, …"})
    name = ma.fields.String()
    description = ma.fields.String()
    provider_id = ma.fields.String()
    model = ma.fields.String()
    system_prompt = ma.fields.String()
    capabilities = ma.fields.String(metadata={"description": _CAPS})
    compiled_capabilities = ma.fields.Dict(metadata={
        "description": "The compiled capability set of this version: tools, network "
                       "{mode, allowlist}, limits, env, checkpoints (keys sorted)."})
    pack_ids = ma.fields.List(ma.fields.String(), metadata={"description": _PACKS})
    thinking_effort = ma.fields.String(metadata={"enum": list(THINKING_EFFORTS)})
    max_continuations = ma.fields.Integer()
    max_context_tokens = ma.fields.Integer()
    version_created_at = ma.fields.DateTime()
    version_created_by_user_id = ma.fields.String(allow_none=True)

    @ma.pre_dump
    def _flatten(self, state, **_kwargs):
        return _flatten(state)


class RoleSchema(_VersionFields):
    """A role with its current version's fields."""

    id = ma.fields.String()
    status = ma.fields.String(metadata={
        "enum": ["active", "archived", "deleted"],
        "description": "deleted only in the answer to DELETE"})
    archived_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class RoleVersionSchema(_VersionFields):
    """One immutable version of a role."""

    role_id = ma.fields.String()
    current = ma.fields.Boolean(metadata={"description": "Whether this is the role's "
                                                         "current version"})


class RoleListArgsSchema(PageArgsSchema):
    archived = ma.fields.Boolean(load_default=False, metadata={
        "description": "false (default): active roles; true: archived ones"})


class RoleCreateSchema(ma.Schema):
    name = ma.fields.String(required=True, metadata={
        "description": f"Unique in the organisation; at most {rules.MAX_NAME} characters"})
    description = ma.fields.String(metadata={
        "description": f"At most {rules.MAX_DESCRIPTION} characters"})
    provider_id = ma.fields.String(required=True, metadata={
        "description": "A provider (prov_…) of this organisation, not archived"})
    model = ma.fields.String(required=True, metadata={
        "description": "One of the provider's models"})
    system_prompt = ma.fields.String(metadata={
        "description": f"At most {rules.MAX_SYSTEM_PROMPT} characters"})
    capabilities = ma.fields.String(metadata={"description": _CAPS})
    pack_ids = ma.fields.List(ma.fields.String(), metadata={"description": _PACKS})
    thinking_effort = ma.fields.String(metadata={"enum": list(THINKING_EFFORTS),
                                                 "description": _EFFORT + " Default medium."})
    max_continuations = ma.fields.Integer(strict=True, metadata={
        "description": _CONTINUATIONS + f" Default {rules.MAX_CONTINUATIONS[2]}."})
    max_context_tokens = ma.fields.Integer(strict=True, metadata={
        "description": _CONTEXT + f" Default {rules.MAX_CONTEXT_TOKENS[2]}."})


class RoleUpdateSchema(RoleCreateSchema):
    """Any subset of the fields; the others keep the current version's values."""

    name = ma.fields.String()
    provider_id = ma.fields.String()
    model = ma.fields.String()


class VersionDiffArgsSchema(ma.Schema):
    against = ma.fields.String(load_default=None, metadata={
        "description": "The version to compare with; default: the one before"})


class ValueChangeSchema(ma.Schema):
    field = ma.fields.String()
    from_ = ma.fields.Raw(data_key="from", attribute="from")
    to = ma.fields.Raw()


class CapabilityDiffSchema(ma.Schema):
    added = ma.fields.List(ma.fields.Dict(), metadata={
        "description": "{path, value}: a key or list entry only the newer set has"})
    removed = ma.fields.List(ma.fields.Dict(), metadata={
        "description": "{path, value}: a key or list entry only the older set has"})
    changed = ma.fields.List(ma.fields.Dict(), metadata={
        "description": "{path, from, to}: a value that differs"})


class VersionDiffSchema(ma.Schema):
    role_id = ma.fields.String()
    from_version = ma.fields.Integer()
    to_version = ma.fields.Integer()
    fields = ma.fields.List(ma.fields.Nested(ValueChangeSchema), metadata={
        "description": "Fields other than the system prompt and caps.yaml that differ"})
    capabilities = ma.fields.Nested(CapabilityDiffSchema, metadata={
        "description": "The compiled capability sets, entry by entry"})
    capabilities_yaml_diff = ma.fields.String(metadata={"description": "Unified diff"})
    system_prompt_diff = ma.fields.String(metadata={"description": "Unified diff"})


class ExplainArgsSchema(ma.Schema):
    capabilities = ma.fields.String(load_default=None, metadata={
        "description": "A draft caps.yaml to compile without saving; its changes from the "
                       "version are reported too. Omit to explain the saved version."})
    version = ma.fields.String(load_default=None, metadata={
        "description": "The version to explain or compare with; default: the current one"})


class DraftSchema(ma.Schema):
    capabilities = ma.fields.String(required=True, metadata={"description": _CAPS})


class ExplanationSchema(ma.Schema):
    capabilities = ma.fields.Dict(metadata={"description": "The compiled capability set"})
    defaults_applied = ma.fields.List(ma.fields.String(), metadata={
        "description": "Sections and limits the caps.yaml leaves to their defaults"})
    notes = ma.fields.List(ma.fields.String(), metadata={
        "description": "What the set means in practice (e.g. allow-lists are refused at "
                       "provisioning until a backend supports them)"})


class RoleExplanationSchema(ExplanationSchema):
    role_id = ma.fields.String()
    version = ma.fields.Integer(metadata={"description": "The version explained, or the "
                                                         "one a draft is compared with"})
    source = ma.fields.String(metadata={"enum": ["version", "draft"]})
    changes = ma.fields.Nested(CapabilityDiffSchema, allow_none=True, metadata={
        "description": "For a draft: its changes from the version; else null"})


class CapabilityOptionSchema(ma.Schema):
    name = ma.fields.String()
    description = ma.fields.String()


class CapabilityLimitSchema(CapabilityOptionSchema):
    default = ma.fields.Integer()
    minimum = ma.fields.Integer()
    maximum = ma.fields.Integer()
    unit = ma.fields.String()
    enforced_by = ma.fields.String(metadata={
        "description": "What enforces this limit on this server's sandbox hosts (e.g. a "
                       "cgroup v1 controller plus an rlimit), as `evershell doctor` says"})


class CapabilityRegistrySchema(ma.Schema):
    tools = ma.fields.List(ma.fields.Nested(CapabilityOptionSchema))
    limits = ma.fields.List(ma.fields.Nested(CapabilityLimitSchema))
    network_modes = ma.fields.List(ma.fields.Nested(CapabilityOptionSchema))
    checkpoint_modes = ma.fields.List(ma.fields.Nested(CapabilityOptionSchema))
    env_sources = ma.fields.List(ma.fields.Nested(CapabilityOptionSchema))
    reserved_env_names = ma.fields.List(ma.fields.String())
    reserved_env_prefixes = ma.fields.List(ma.fields.String())
    max_bytes = ma.fields.Integer(metadata={"description": "Largest caps.yaml accepted"})
