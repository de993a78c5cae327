"""A secret something uses cannot be deleted: 409 ``secret_in_use`` naming the providers
(whose API key it is) and the roles (whose current caps.yaml names it in ``env``); the
console names them before anyone confirms a delete. Secrets learn who uses them through
checks the using domains register (``secrets.usage``), never by importing them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from evershell.roles import services as roles
from evershell.secrets import usage
from tests.factories import principal_for
from tests.secrets.factories import make_secret

SECRETS = "/settings/secrets"
USES_TOKEN = "tools: [shell]\nenv:\n  GITHUB_TOKEN: {secret: GITHUB_BOT_TOKEN}\n"


@pytest.fixture
def secret(owner):
    return make_secret(owner, "GITHUB_BOT_TOKEN")


def make_role(owner, **values):
    from tests.roles.conftest import make_role as make
    return make(owner, **values)


def delete(client, headers, secret_id):
    return client.delete(f"/v1/secrets/{secret_id}", headers=headers)


def test_a_role_whose_caps_name_the_secret_blocks_its_delete(client, owner, headers, secret):
    state = make_role(owner, name="triage", capabilities=USES_TOKEN)
    refused = delete(client, headers, secret.id)
    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert error["code"] == "secret_in_use"
    # The same shape as a provider's use: ids per kind, every kind present.
    assert error["details"] == {"providers": [], "roles": [state.role.id]}
    assert "role “triage”" in error["message"]

    roles.update(principal_for(owner), state.role.id, {"capabilities": "tools: [shell]\n"})
    assert delete(client, headers, secret.id).status_code == 200


def test_providers_and_roles_are_named_together(client, owner, headers, secret):
    from evershell.providers import services as providers
    from tests.roles.conftest import make_provider
    provider = providers.create(principal_for(owner), {
        "name": "Claude", "kind": "anthropic", "api_key_secret_id": secret.id,
        "models": ["claude"]})
    state = make_role(owner, provider=make_provider(owner), capabilities=USES_TOKEN)
    error = delete(client, headers, secret.id).get_json()["error"]
    assert error["details"] == {"providers": [provider.id], "roles": [state.role.id]}


def test_only_the_current_version_counts_and_archived_roles_do(client, owner, headers,
                                                               secret):
    actor = principal_for(owner)
    old = make_role(owner, capabilities=USES_TOKEN)
    roles.update(actor, old.role.id, {"capabilities": "tools: [shell]\n"})  # v2 drops it
    archived = make_role(owner, capabilities=USES_TOKEN)
    roles.archive(actor, archived.role.id)
    details = delete(client, headers, secret.id).get_json()["error"]["details"]
    assert details["roles"] == [archived.role.id]


def test_a_deleted_role_no_longer_counts(client, owner, headers, secret):
    state = make_role(owner, capabilities=USES_TOKEN)
    roles.delete(principal_for(owner), state.role.id)
    assert delete(client, headers, secret.id).status_code == 200


def test_a_similar_name_or_another_org_does_not_count(client, owner, headers, secret):
    from tests.factories import make_member, make_org
    make_role(owner, capabilities="env:\n  X: {secret: GITHUB_BOT_TOKEN_2}\n")
    stranger = make_member(make_org(), role="owner")
    make_secret(stranger, "GITHUB_BOT_TOKEN")
    make_role(stranger, capabilities=USES_TOKEN)
    assert delete(client, headers, secret.id).status_code == 200


def test_the_confirm_dialog_names_the_users(console_client, owner, secret):
    make_role(owner, name="triage", capabilities=USES_TOKEN)
    unused = make_secret(owner, "UNUSED_TOKEN")
    html = console_client(owner).get(SECRETS).get_data(as_text=True)
    used = row_of(html, secret.id)
    assert "role “triage”" in used  # the "Used by" column
    assert 'hx-confirm="GITHUB_BOT_TOKEN is used by role “triage”' in used
    assert 'hx-confirm="Delete UNUSED_TOKEN? No role or provider uses it' in \
        row_of(html, unused.id)


def row_of(html: str, item_id: str) -> str:
    start = html.index(f'id="row-{item_id}"')
    return html[start:html.index("</tr>", start)]


def test_a_refused_console_delete_says_why(console_client, owner, secret):
    make_role(owner, name="triage", capabilities=USES_TOKEN)
    client = console_client(owner)
    answer = client.post(f"{SECRETS}/{secret.id}/delete",
                         headers={"HX-Request": "true", "X-CSRF-Token": client.csrf_token})
    assert answer.status_code == 200
    assert "is used by role “triage”" in answer.get_data(as_text=True)


def test_providers_and_roles_register_their_checks_at_start_up(app):
    assert {"providers", "roles"} <= set(usage.registered())


def test_secrets_import_neither_providers_nor_roles():
    """STYLE: imports point down; secrets sit below providers and roles."""
    package = Path(usage.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not name.startswith(("evershell.roles", "evershell.providers")), \
                    f"{path.name} imports {name}"

