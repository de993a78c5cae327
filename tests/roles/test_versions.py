"""A role's history through the API: versions, diffs between them, explain (saved and
draft), and the capability registry."""

from __future__ import annotations

import pytest

from evershell.roles import capset
from tests.factories import make_org
from tests.roles.conftest import CAPS, key_of, make_role

ROLES = "/v1/roles"


def error(response) -> dict:
    return response.get_json()["error"]


@pytest.fixture
def role(client, owner):
    """A role with three versions: v2 changes caps.yaml and the prompt, v3 the model."""
    state = make_role(owner.membership, owner.provider, system_prompt="Be brief.\nBe kind.",
                      capabilities=CAPS)
    url = f"{ROLES}/{state.role.id}"
    assert client.patch(url, headers=owner.headers, json={
        "system_prompt": "Be brief.\nBe exact.",
        "capabilities": "tools: [shell, write_file]\nlimits:\n  memory_mb: 4096\n"
                        "network: {allowlist: [pypi.org]}\n"}).status_code == 200
    assert client.patch(url, headers=owner.headers, json={
        "model": "other", "max_continuations": 5}).status_code == 200
    return url


def test_versions_are_listed_newest_first_and_numbered(client, owner, role):
    page = client.get(f"{role}/versions", headers=owner.headers).get_json()
    assert [v["version"] for v in page["data"]] == [3, 2, 1]
    assert [v["current"] for v in page["data"]] == [True, False, False]
    assert page["next_cursor"] is None
    first = client.get(f"{role}/versions?limit=2", headers=owner.headers).get_json()
    rest = client.get(f"{role}/versions?limit=2&cursor={first['next_cursor']}",
                      headers=owner.headers).get_json()
    assert [v["version"] for v in first["data"] + rest["data"]] == [3, 2, 1]


def test_a_version_is_returned_as_it_was_written(client, owner, role):
    v2 = client.get(f"{role}/versions/2", headers=owner.headers).get_json()
    assert (v2["version"], v2["model"], v2["max_continuations"]) == (2, "scripted", 20)
    assert v2["compiled_capabilities"]["limits"]["memory_mb"] == 4096
    assert v2["role_id"] == role.rsplit("/", 1)[1]
    assert v2["version_created_by_user_id"] == owner.membership.user_id


@pytest.mark.parametrize("number", ["4", "0", "-1", "v1", "1.0", "99999999999"])
def test_a_version_the_role_does_not_have_is_404(client, owner, role, number):
    response = client.get(f"{role}/versions/{number}", headers=owner.headers)
    assert response.status_code == 404
    assert error(response)["code"] == "version_not_found"


def test_diff_defaults_to_the_previous_version(client, owner, role):
    result = client.get(f"{role}/versions/2/diff", headers=owner.headers).get_json()
    assert (result["from_version"], result["to_version"]) == (1, 2)
    assert result["fields"] == []
    assert result["capabilities"] == {
        "added": [{"path": "network.allowlist", "value": "pypi.org"},
                  {"path": "tools", "value": "write_file"}],
        "removed": [{"path": "tools", "value": "read_file"}],
        "changed": [{"path": "limits.memory_mb", "from": 2048, "to": 4096},
                    {"path": "network.mode", "from": "none", "to": "allowlist"}]}
    assert result["system_prompt_diff"] == (
        "--- v1/system_prompt\n+++ v2/system_prompt\n@@ -1,2 +1,2 @@\n Be brief.\n"
        "-Be kind.\n+Be exact.")
    assert "-tools: [shell, read_file]" in result["capabilities_yaml_diff"]
    assert "+tools: [shell, write_file]" in result["capabilities_yaml_diff"]


def test_diff_against_any_version_in_either_direction(client, owner, role):
    result = client.get(f"{role}/versions/3/diff?against=1", headers=owner.headers).get_json()
    assert (result["from_version"], result["to_version"]) == (1, 3)
    assert result["fields"] == [{"field": "model", "from": "scripted", "to": "other"},
                                {"field": "max_continuations", "from": 20, "to": 5}]
    back = client.get(f"{role}/versions/1/diff?against=3", headers=owner.headers).get_json()
    assert back["fields"] == [{"field": "model", "from": "other", "to": "scripted"},
                              {"field": "max_continuations", "from": 5, "to": 20}]
    assert back["capabilities"]["removed"] == result["capabilities"]["added"]
    same = client.get(f"{role}/versions/2/diff?against=2", headers=owner.headers).get_json()
    assert same["capabilities"] == {"added": [], "removed": [], "changed": []}
    assert same["capabilities_yaml_diff"] == "" and same["fields"] == []


def test_diff_errors(client, owner, role):
    first = client.get(f"{role}/versions/1/diff", headers=owner.headers)
    assert first.status_code == 400 and "against" in error(first)["details"]["fields"]
    for path in ("versions/9/diff", "versions/2/diff?against=9", "versions/2/diff?against=x"):
        response = client.get(f"{role}/{path}", headers=owner.headers)
        assert response.status_code == 404 and error(response)["code"] == "version_not_found"


def test_explain_the_current_version(client, owner, role):
    result = client.post(f"{role}/capabilities/explain", headers=owner.headers).get_json()
    assert (result["version"], result["source"], result["changes"]) == (3, "version", None)
    assert result["capabilities"]["tools"] == ["shell", "write_file"]
    assert "limits.cpu_seconds" in result["defaults_applied"]
    assert any("network_policy_unsupported" in note for note in result["notes"])
    older = client.post(f"{role}/capabilities/explain", headers=owner.headers,
                        json={"version": "1"}).get_json()
    assert older["version"] == 1 and older["capabilities"]["tools"] == ["read_file", "shell"]


def test_explain_a_draft_without_saving_it(client, owner, role):
    draft = "tools: [shell]\ncheckpoints: per_task\n"
    result = client.post(f"{role}/capabilities/explain", headers=owner.headers,
                         json={"capabilities": draft}).get_json()
    assert (result["source"], result["version"]) == ("draft", 3)
    assert result["capabilities"]["checkpoints"] == "per_task"
    assert result["changes"]["changed"][0] == {"path": "checkpoints", "from": "none",
                                               "to": "per_task"}
    assert {"path": "tools", "value": "write_file"} in result["changes"]["removed"]
    role_now = client.get(role, headers=owner.headers).get_json()
    assert role_now["version"] == 3 and role_now["compiled_capabilities"]["checkpoints"] == \
        "none"
    against_v1 = client.post(f"{role}/capabilities/explain", headers=owner.headers,
                             json={"capabilities": CAPS, "version": "1"}).get_json()
    assert against_v1["changes"] == {"added": [], "removed": [], "changed": []}


def test_explain_errors(client, owner, role):
    bad = client.post(f"{role}/capabilities/explain", headers=owner.headers,
                      json={"capabilities": "tools: [shell]\nnetwork: everything\n"})
    assert bad.status_code == 422
    assert (error(bad)["details"]["line"], error(bad)["details"]["column"],
            error(bad)["details"]["path"]) == (2, 10, "network")
    missing = client.post(f"{role}/capabilities/explain", headers=owner.headers,
                          json={"version": "7"})
    assert missing.status_code == 404 and error(missing)["code"] == "version_not_found"


def test_members_may_read_history_and_explain(client, owner, role):
    member = key_of(owner.org, "member")
    assert client.get(f"{role}/versions", headers=member).status_code == 200
    assert client.get(f"{role}/versions/2/diff", headers=member).status_code == 200
    assert client.post(f"{role}/capabilities/explain", headers=member,
                       json={"capabilities": "tools: [shell]"}).status_code == 200
    tasks_only = key_of(owner.org, "member", template="tasks_only")  # holds roles:read
    assert client.get(f"{role}/versions/1", headers=tasks_only).status_code == 200
    no_roles = key_of(owner.org, "owner", scopes=["workspace:read"])
    denied = client.post(f"{role}/capabilities/explain", headers=no_roles, json={})
    assert denied.status_code == 403 and error(denied)["code"] == "permission_denied"


def test_the_capability_registry(client, owner):
    response = client.get("/v1/capabilities", headers=key_of(make_org(), "member"))
    assert response.status_code == 200
    registry = response.get_json()
    assert registry == capset.registry()
    assert {t["name"] for t in registry["tools"]} >= {
        "shell", "read_file", "write_file", "list_files"}
    cpu = next(lim for lim in registry["limits"] if lim["name"] == "cpu_seconds")
    assert (cpu["default"], cpu["minimum"], cpu["maximum"], cpu["unit"]) == (
        60, 1, 3600, "seconds")
    assert [m["name"] for m in registry["network_modes"]] == ["none", "allowlist"]
    assert client.get("/v1/capabilities").status_code == 401


def test_compile_a_caps_yaml_without_a_role(client, owner):
    ok = client.post("/v1/capabilities/explain", headers=owner.headers,
                     json={"capabilities": CAPS})
    assert ok.status_code == 200
    assert ok.get_json()["capabilities"]["limits"]["memory_mb"] == 2048
    assert "changes" not in ok.get_json()
    bad = client.post("/v1/capabilities/explain", headers=owner.headers,
                      json={"capabilities": "tools: [shell]\ntools: []\n"})
    assert bad.status_code == 422
    assert error(bad)["details"]["errors"] == [
        {"line": 2, "column": 1, "path": "tools",
         "reason": "duplicate key 'tools' (first at line 1)"}]
    missing = client.post("/v1/capabilities/explain", headers=owner.headers, json={})
    assert missing.status_code == 400
    assert "capabilities" in error(missing)["details"]["fields"]


def test_the_openapi_spec_documents_the_routes_and_errors(client):
    spec = client.get("/v1/openapi.json").get_json()
    post = spec["paths"]["/v1/roles"]["post"]
    assert {"201", "404", "409", "422"} <= set(post["responses"])
    assert "422" in spec["paths"]["/v1/roles/{role_id}/capabilities/explain"]["post"][
        "responses"]
    assert "/v1/roles/{role_id}/versions/{number}/diff" in spec["paths"]
    assert "/v1/capabilities" in spec["paths"]
