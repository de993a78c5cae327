"""Permissions as data: every scope, the default roles, the API key templates.

Scope strings are stored in API keys, so their spelling never changes (SPEC §3).
Nothing else in the code base types a scope string: it names a ``Scope`` member.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Scope(enum.StrEnum):
    WORKSPACE_READ = "workspace:read"
    WORKSPACE_READ_OWN = "workspace:read:own"
    WORKSPACE_WRITE = "workspace:write"
    WORKSPACE_WRITE_OWN = "workspace:write:own"
    TASKS_READ = "tasks:read"
    TASKS_READ_OWN = "tasks:read:own"
    TASKS_WRITE = "tasks:write"
    TASKS_WRITE_OWN = "tasks:write:own"
    PROVIDERS_READ = "providers:read"
    PROVIDERS_WRITE = "providers:write"
    ROLES_READ = "roles:read"
    ROLES_WRITE = "roles:write"
    PACKS_READ = "packs:read"
    PACKS_WRITE = "packs:write"
    SECRETS_READ = "secrets:read"
    SECRETS_WRITE = "secrets:write"
    CREDENTIALS_READ = "credentials:read"
    CREDENTIALS_READ_OWN = "credentials:read:own"
    CREDENTIALS_WRITE = "credentials:write"
    CREDENTIALS_WRITE_OWN = "credentials:write:own"
    API_KEYS_READ = "api_keys:read"
    API_KEYS_READ_OWN = "api_keys:read:own"
    API_KEYS_WRITE = "api_keys:write"
    API_KEYS_WRITE_OWN = "api_keys:write:own"
    MEMBERS_READ = "members:read"
    MEMBERS_WRITE = "members:write"
    AUDIT_READ = "audit:read"
    ORG_READ = "org:read"
    ORG_WRITE = "org:write"

    @property
    def is_own(self) -> bool:
        return self.value.endswith(":own")

    @property
    def is_read(self) -> bool:
        return self.value.split(":")[1] == "read"

    @property
    def org_wide(self) -> Scope:
        """``workspace:read:own`` → ``workspace:read``."""
        return Scope(self.value.removesuffix(":own"))


class Role(enum.StrEnum):
    OWNER = "owner"
    OPERATOR = "operator"
    MEMBER = "member"


S = Scope
_MEMBER = {
    S.PROVIDERS_READ, S.ROLES_READ, S.PACKS_READ,
    S.WORKSPACE_READ_OWN, S.WORKSPACE_WRITE_OWN, S.TASKS_READ_OWN, S.TASKS_WRITE_OWN,
    S.CREDENTIALS_READ_OWN, S.CREDENTIALS_WRITE_OWN, S.API_KEYS_READ_OWN, S.API_KEYS_WRITE_OWN,
    S.ORG_READ,
}
_OPERATOR = _MEMBER | {
    S.SECRETS_READ,
    S.PROVIDERS_WRITE, S.ROLES_WRITE, S.PACKS_WRITE, S.SECRETS_WRITE,
    S.WORKSPACE_READ, S.TASKS_READ, S.MEMBERS_READ, S.AUDIT_READ,
}
_OWNER = _OPERATOR | {
    S.WORKSPACE_WRITE, S.CREDENTIALS_READ, S.CREDENTIALS_WRITE,
    S.API_KEYS_READ, S.API_KEYS_WRITE, S.MEMBERS_WRITE, S.ORG_WRITE,
}

# SPEC §3: the unscoped tasks:write is never granted to a default role.
ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.OWNER: frozenset(_OWNER),
    Role.OPERATOR: frozenset(_OPERATOR),
    Role.MEMBER: frozenset(_MEMBER),
}


class KeyTemplate(enum.StrEnum):
    FULL = "full"
    READ_ONLY = "read_only"
    TASKS_ONLY = "tasks_only"


TEMPLATE_DESCRIPTIONS = {
    KeyTemplate.FULL: "Every scope the creator holds.",
    KeyTemplate.READ_ONLY: "The creator's read scopes (org-wide and :own).",
    KeyTemplate.TASKS_ONLY: "Enough to submit and follow tasks: roles:read, "
                            "workspace:read:own, workspace:write:own, tasks:read:own, "
                            "tasks:write:own.",
}
_TASKS_ONLY = frozenset({S.ROLES_READ, S.WORKSPACE_READ_OWN, S.WORKSPACE_WRITE_OWN,
                         S.TASKS_READ_OWN, S.TASKS_WRITE_OWN})


def template_scopes(template: KeyTemplate, creator_scopes: Iterable[Scope]) -> frozenset[Scope]:
    """The scopes a key made from ``template`` asks for, given its creator's scopes."""
    creator = frozenset(creator_scopes)
    if template is KeyTemplate.FULL:
        return creator
    if template is KeyTemplate.READ_ONLY:
        return frozenset(s for s in creator if s.is_read)
    return _TASKS_ONLY


def parse_scopes(values: Iterable[str]) -> tuple[frozenset[Scope], list[str]]:
    """Known scopes, and the strings that are not scopes."""
    known, unknown = set(), []
    for value in values:
        try:
            known.add(Scope(value))
        except ValueError:
            unknown.append(value)
    return frozenset(known), unknown


def satisfies(held: frozenset[Scope], required: Scope) -> bool:
    """Whether ``held`` grants ``required``; an org-wide scope implies its ``:own`` variant."""
    return required in held or (required.is_own and required.org_wide in held)
