"""The caps.yaml compiler: defaults, every kind of problem with its exact position, the
stable compiled form, and diff."""

from __future__ import annotations

import pytest

from evershell.roles import capset
from evershell.roles.caps import (
    MAX_DEPTH,
    InvalidCapabilities,
    compile_caps,
    compile_with_defaults,
    explain,
)
from evershell.roles.capset import CapabilitySet, diff

DEFAULT_LIMITS = {name: spec.default for name, spec in capset.LIMITS.items()}


def problems(text: str) -> list[dict]:
    with pytest.raises(InvalidCapabilities) as caught:
        compile_caps(text)
    return caught.value.details["errors"]


def only(text: str) -> dict:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


# -- defaults and the compiled form ------------------------------------------------------

@pytest.mark.parametrize("text", [None, "", "\n", "# only a comment\n", "---\n"])
def test_an_empty_caps_yaml_is_all_defaults(text):
    caps = compile_caps(text)
    assert caps == CapabilitySet()
    assert caps.to_dict() == {
        "checkpoints": "none", "env": {}, "limits": DEFAULT_LIMITS,
        "network": {"allowlist": [], "mode": "none"}, "tools": []}


def test_a_full_caps_yaml_compiles_to_a_sorted_stable_form():
    text = """
tools: [write_file, shell]
network:
  allowlist: [pypi.org, "*.GitHub.com", api.github.com., 10.1.2.3]
limits: {memory_mb: 2048, cpu_seconds: 0x10, disk_mb: 1_024}
env:
  NPM_TOKEN: {credential: NPM}
  GH_TOKEN: {secret: GITHUB_BOT}
checkpoints: per_task
"""
    caps = compile_caps(text)
    assert caps.to_dict() == {
        "checkpoints": "per_task",
        "env": {"GH_TOKEN": {"secret": "GITHUB_BOT"}, "NPM_TOKEN": {"credential": "NPM"}},
        "limits": {**DEFAULT_LIMITS, "cpu_seconds": 16, "disk_mb": 1024, "memory_mb": 2048},
        "network": {"allowlist": ["*.github.com", "10.1.2.3", "api.github.com", "pypi.org"],
                    "mode": "allowlist"},
        "tools": ["shell", "write_file"],
    }
    assert list(caps.to_dict()) == sorted(caps.to_dict())
    assert caps.limit("memory_mb") == 2048
    assert CapabilitySet.from_dict(caps.to_dict()) == caps


def test_order_and_spelling_that_mean_the_same_compile_equal():
    a = compile_caps("tools: [shell, read_file]\nnetwork: {allowlist: [b.example.com, "
                     "a.example.com]}")
    b = compile_caps("network:\n  allowlist:\n    - A.example.com\n    - b.example.com\n"
                     "tools:\n  - read_file\n  - shell\n")
    assert a == b and a.to_dict() == b.to_dict()


def test_the_compiled_set_is_frozen():
    caps = compile_caps("tools: [shell]")
    with pytest.raises(AttributeError):
        caps.tools = ("read_file",)  # type: ignore[misc]


def test_idn_host_names_are_stored_as_punycode():
    caps = compile_caps("network: {allowlist: [bücher.example]}")
    assert caps.network_allowlist == ("xn--bcher-kva.example",)


def test_explain_says_which_settings_are_defaults_and_warns_about_allowlists():
    result = explain("tools: [shell]\nlimits: {memory_mb: 512}\n"
                     "network: {allowlist: [pypi.org]}")
    assert result["defaults_applied"] == [
        "checkpoints", "env", "limits.cpu_seconds", "limits.disk_mb",
        "limits.max_output_bytes", "limits.processes", "limits.wall_seconds"]
    assert any("network_policy_unsupported" in note for note in result["notes"])
    assert result["capabilities"]["limits"]["memory_mb"] == 512
    assert compile_with_defaults("").defaulted == (
        "checkpoints", "env", "limits", "network", "tools")
    assert any("No tools" in note for note in explain("")["notes"])


def test_the_registry_lists_every_tool_limit_and_mode_the_schema_accepts():
    registry = capset.registry()
    assert [t["name"] for t in registry["tools"]] == [
        "shell", "read_file", "write_file", "list_files"]
    assert all(t["description"] for t in registry["tools"])
    memory = next(lim for lim in registry["limits"] if lim["name"] == "memory_mb")
    assert memory == {"name": "memory_mb", "default": 1024, "minimum": 64,
                      "maximum": 65536, "unit": "MiB", "description": memory["description"],
                      "enforced_by": memory["enforced_by"]}
    assert memory["enforced_by"]  # how this host enforces it (tests/workspaces says more)
    assert [m["name"] for m in registry["network_modes"]] == ["none", "allowlist"]
    assert [m["name"] for m in registry["checkpoint_modes"]] == ["none", "per_task"]
    assert [m["name"] for m in registry["env_sources"]] == ["secret", "credential"]
    for tool in registry["tools"]:
        assert compile_caps(f"tools: [{tool['name']}]").tools == (tool["name"],)
    for limit in registry["limits"]:
        for value in (limit["minimum"], limit["maximum"]):
            assert compile_caps(f"limits: {{{limit['name']}: {value}}}").limit(
                limit["name"]) == value
    assert compile_caps(capset.STARTER_CAPS).tools == tuple(sorted(capset.TOOLS))


# -- problems, each at its exact position ------------------------------------------------

def test_an_unknown_top_level_key_names_itself_and_suggests_the_right_one():
    assert only("tools: [shell]\ntool: [shell]\n") == {
        "line": 2, "column": 1, "path": "tool",
        "reason": "unknown key 'tool'; did you mean 'tools'? "
                  "(allowed: tools, network, limits, env, checkpoints)"}


def test_an_unknown_key_with_nothing_close_gets_no_suggestion():
    problem = only("colour: blue")
    assert problem["path"] == "colour" and "did you mean" not in problem["reason"]


def test_unknown_limit_and_tool_names_suggest_the_closest_known_one():
    found = problems("limits:\n  memory: 512\ntools: [shel, read-file]\n")
    assert found == [
        {"line": 2, "column": 3, "path": "limits.memory",
         "reason": "unknown key 'memory'; did you mean 'memory_mb'? (allowed: cpu_seconds, "
                   "wall_seconds, memory_mb, processes, disk_mb, max_output_bytes)"},
        {"line": 3, "column": 9, "path": "tools[0]",
         "reason": "unknown tool 'shel'; did you mean 'shell'? (expected one of: shell, "
                   "read_file, write_file, list_files)"},
        {"line": 3, "column": 15, "path": "tools[1]",
         "reason": "unknown tool 'read-file'; did you mean 'read_file'? (expected one of: "
                   "shell, read_file, write_file, list_files)"},
    ]


def test_every_problem_is_reported_at_once_and_the_first_repeats_at_the_top():
    text = "checkpoints: sometimes\nlimits:\n  memory_mb: 10\n  processes: 1.5\nfoo: 1\n"
    with pytest.raises(InvalidCapabilities) as caught:
        compile_caps(text)
    error = caught.value
    assert error.status == 422 and error.code.value == "invalid_capabilities"
    assert [(p["line"], p["column"], p["path"]) for p in error.details["errors"]] == [
        (1, 14, "checkpoints"), (3, 14, "limits.memory_mb"), (4, 14, "limits.processes"),
        (5, 1, "foo")]
    first = error.details["errors"][0]
    assert {k: error.details[k] for k in ("line", "column", "path", "reason")} == first
    assert "(line 1, column 14); and 3 more problems" in error.message


@pytest.mark.parametrize("text, line, column, path, reason", [
    ("limits: {memory_mb: 10}", 1, 21, "limits.memory_mb",
     "10 is out of range: expected a whole number of MiB from 64 to 65536"),
    ("limits:\n  cpu_seconds: 3601", 2, 16, "limits.cpu_seconds",
     "3601 is out of range: expected a whole number of seconds from 1 to 3600"),
    ("limits: {processes: 2.5}", 1, 21, "limits.processes",
     "expected a whole number of processes from 1 to 4096"),
    ("limits: {wall_seconds: '60'}", 1, 24, "limits.wall_seconds",
     "expected a whole number of seconds from 1 to 86400"),
    ("limits: {disk_mb: true}", 1, 19, "limits.disk_mb",
     "expected a whole number of MiB from 16 to 1048576"),
    ("limits: {cpu_seconds: " + "9" * 5000 + "}", 1, 23, "limits.cpu_seconds",
     "the number is out of range: expected a whole number of seconds from 1 to 3600"),
    ("limits: 5", 1, 9, "limits", "expected a mapping with the keys cpu_seconds, "
     "wall_seconds, memory_mb, processes, disk_mb, max_output_bytes"),
    ("tools:\n", 1, 7, "tools", "expected a list of tool names, e.g. [a, b]"),
    ("tools: shell", 1, 8, "tools", "expected a list of tool names, e.g. [a, b]"),
    ("tools: [shell, 3]", 1, 16, "tools[1]",
     "expected a tool, one of: shell, read_file, write_file, list_files"),
    ("tools:\n  - shell\n  - read_file\n  - shell\n", 4, 5, "tools[2]",
     "'shell' is listed twice (first at line 2)"),
    ("checkpoints: pertask", 1, 14, "checkpoints",
     "unknown checkpoint mode 'pertask'; did you mean 'per_task'? "
     "(expected one of: none, per_task)"),
    ("network: full", 1, 10, "network",
     "unknown network mode 'full' (expected none, or a mapping {allowlist: [host, ...]})"),
    ("network: [pypi.org]", 1, 10, "network",
     "expected none, or a mapping {allowlist: [host, ...]}"),
    ("network: {}", 1, 10, "network", "missing the key 'allowlist'"),
    ("network: {allowlist: []}", 1, 22, "network.allowlist",
     "expected at least 1 of host names"),
    ("network:\n  allowlist: [pypi.org]\n  deny: [x.org]", 3, 3, "network.deny",
     "unknown key 'deny' (allowed: allowlist)"),
    ("- tools\n", 1, 1, "",
     "caps.yaml must be a mapping of sections: tools, network, limits, env, checkpoints"),
    ("just words", 1, 1, "",
     "caps.yaml must be a mapping of sections: tools, network, limits, env, checkpoints"),
])
def test_type_and_range_problems(text, line, column, path, reason):
    assert only(text) == {"line": line, "column": column, "path": path, "reason": reason}


@pytest.mark.parametrize("host, reason", [
    ("https://api.github.com/v3", "expected a host name, not a URL: write 'api.github.com'"),
    ("pypi.org:443", "ports are not supported: name the host only"),
    ("*", "a wildcard must be the whole first label of a name with at least two more "
          "labels, as in *.example.com"),
    ("*.com", "a wildcard must be the whole first label of a name with at least two more "
              "labels, as in *.example.com"),
    ("api.*.com", "a wildcard must be the whole first label of a name with at least two "
                  "more labels, as in *.example.com"),
    ("bad_host.example", "'bad_host.example' is not a valid host name"),
    ("-lead.example", "'-lead.example' is not a valid host name"),
    ("a..b", "'a..b' is not a valid host name"),
    ("1.2.3", "'1.2.3' is not a valid host name"),
    ("localhost", "localhost cannot be allow-listed (local and metadata names are refused)"),
    ("metadata.google.internal",
     "metadata.google.internal cannot be allow-listed (local and metadata names are refused)"),
    ("169.254.169.254", "169.254.169.254 cannot be allow-listed (loopback, link-local, "
                        "metadata and multicast addresses are refused)"),
    ("127.0.0.1", "127.0.0.1 cannot be allow-listed (loopback, link-local, metadata and "
                  "multicast addresses are refused)"),
    ("::1", "::1 cannot be allow-listed (loopback, link-local, metadata and multicast "
            "addresses are refused)"),
    ("0.0.0.0", "0.0.0.0 cannot be allow-listed (loopback, link-local, metadata and "
                "multicast addresses are refused)"),
])
def test_allowlist_hosts_are_validated(host, reason):
    assert only(f'network:\n  allowlist:\n    - pypi.org\n    - "{host}"\n') == {
        "line": 4, "column": 7, "path": "network.allowlist[1]", "reason": reason}


@pytest.mark.parametrize("entry, column, path, reason", [
    ("PATH: {secret: X}", 3, "env.PATH", "PATH is reserved: the sandbox sets it itself"),
    ("HOME: {secret: X}", 3, "env.HOME", "HOME is reserved: the sandbox sets it itself"),
    ("LD_PRELOAD: {secret: X}", 3, "env.LD_PRELOAD", "names starting with LD_ are reserved"),
    ("EVERSHELL_TASK: {secret: X}", 3, "env.EVERSHELL_TASK",
     "names starting with EVERSHELL_ are reserved"),
    ("1TOKEN: {secret: X}", 3, "env.1TOKEN", "'1TOKEN' is not an environment variable name "
     "(letters, digits and _, not starting with a digit)"),
    ("MY-TOKEN: {secret: X}", 3, "env.MY-TOKEN", "'MY-TOKEN' is not an environment "
     "variable name (letters, digits and _, not starting with a digit)"),
    ("TOKEN: ghp_live_value", 10, "env.TOKEN", "expected {secret: NAME} or {credential: "
     "NAME} (literal values are not allowed, so no secret ever sits in a role)"),
    ("TOKEN: {secret: A, credential: B}", 10, "env.TOKEN", "expected {secret: NAME} or "
     "{credential: NAME} (literal values are not allowed, so no secret ever sits in a role)"),
    ("TOKEN: {}", 10, "env.TOKEN", "expected {secret: NAME} or {credential: NAME} "
     "(literal values are not allowed, so no secret ever sits in a role)"),
    ("TOKEN: {vault: X}", 11, "env.TOKEN.vault",
     "unknown key 'vault' (allowed: secret, credential)"),
    ("TOKEN: {secret: ghp_live_value}", 19, "env.TOKEN.secret",
     "expected a secret or credential name (upper-case letters, digits and _, starting "
     "with a letter, e.g. GITHUB_TOKEN)"),
])
def test_env_entries_are_validated(entry, column, path, reason):
    found = problems(f"env:\n  {entry}\n")
    assert {"line": 2, "column": column, "path": path, "reason": reason} in found


def test_env_problems_never_quote_what_may_be_a_pasted_secret():
    with pytest.raises(InvalidCapabilities) as caught:
        compile_caps("env:\n  A: sk-live-abcdef\n  B: {secret: sk-live-ghijkl}\n")
    assert "sk-live" not in repr(caught.value.details) and "sk-live" not in caught.value.message


# -- what YAML allows but caps.yaml refuses ----------------------------------------------

def test_duplicate_keys_are_refused_with_the_first_position():
    assert problems("tools: [shell]\nnetwork: none\ntools: [read_file]\n") == [
        {"line": 3, "column": 1, "path": "tools",
         "reason": "duplicate key 'tools' (first at line 1)"}]
    assert only("limits:\n  memory_mb: 100\n  memory_mb: 200\n")["path"] == "limits.memory_mb"


def test_anchors_and_aliases_are_refused_where_they_stand():
    found = problems("limits:\n  cpu_seconds: &n 10\n  wall_seconds: *n\n")
    assert found == [
        {"line": 2, "column": 16, "path": "limits.cpu_seconds",
         "reason": "anchors (&name) are not allowed; write values out in full"},
        {"line": 3, "column": 17, "path": "limits.wall_seconds",
         "reason": "aliases (*name) are not allowed; write the value out"}]


def test_a_billion_laughs_document_is_refused_without_expanding_it():
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    found = problems("\n".join(lines))
    assert {p["reason"] for p in found} >= {
        "anchors (&name) are not allowed; write values out in full",
        "aliases (*name) are not allowed; write the value out"}
    assert len(found) == 50  # capped, not one per alias


def test_merge_keys_are_refused():
    assert only("limits:\n  <<: {memory_mb: 512}\n") == {
        "line": 2, "column": 3, "path": "limits.<<",
        "reason": "merge keys (<<) are not allowed; write the keys out"}


def test_custom_tags_are_refused_and_never_constructed():
    assert only("limits: {cpu_seconds: !!python/object/apply:os.system [true]}") == {
        "line": 1, "column": 23, "path": "limits.cpu_seconds",
        "reason": "the tag !!python/object/apply:os.system is not allowed; caps.yaml uses "
                  "plain YAML values only"}
    assert only("tools: [!shell x]")["reason"].startswith("the tag !shell is not allowed")


def test_non_string_keys_are_refused():
    assert problems("yes: 1\n3: 2\n") == [
        {"line": 1, "column": 1, "path": "yes", "reason": "keys must be plain strings "
         "(quote keys such as yes, no, on, off or numbers)"},
        {"line": 2, "column": 1, "path": "3", "reason": "keys must be plain strings "
         "(quote keys such as yes, no, on, off or numbers)"}]
    assert only("env:\n  [A, B]: {secret: X}\n")["line"] == 2


def test_deep_nesting_is_refused_before_it_can_exhaust_the_stack():
    problem = only("tools: " + "[" * 10_000 + "]" * 10_000)
    assert problem["reason"] == f"nested more than {MAX_DEPTH} levels deep"
    assert problem["line"] == 1


def test_documents_over_64_kib_are_refused_before_parsing():
    text = "# " + "x" * (capset.MAX_CAPS_BYTES - 3) + "\n"
    assert compile_caps(text) == CapabilitySet()  # exactly at the limit: fine
    assert only(text + "#") == {"line": 1, "column": 1, "path": "",
                                "reason": "caps.yaml is 65537 bytes; the limit is 65536 bytes"}


@pytest.mark.parametrize("text, line, column, reason", [
    ("tools: [shell,\n", 2, 1, "not valid YAML: expected the node content, but found "
                              "'<stream end>' (while parsing a flow node)"),
    ("\ttools: []", 1, 1, "not valid YAML: found character '\\t' that cannot start any "
                          "token (while scanning for the next token)"),
    ("tools: [shell]\n---\nnetwork: none\n", 2, 1, "not valid YAML: but found another "
     "document (expected a single document in the stream)"),
    ("limits:\n  memory_mb: 1\n bad: 2\n", 3, 2, "not valid YAML: expected <block end>, "
     "but found '<block mapping start>' (while parsing a block mapping)"),
])
def test_syntax_errors_carry_their_position(text, line, column, reason):
    assert only(text) == {"line": line, "column": column, "path": "", "reason": reason}


def test_syntax_errors_do_not_echo_the_document():
    with pytest.raises(InvalidCapabilities) as caught:
        compile_caps("env:\n  A: {secret: X}\n  sk-live-123 [\n")
    assert "sk-live-123" not in repr(caught.value.details)


# -- diff -------------------------------------------------------------------------------

def test_diff_lists_added_removed_and_changed_entries_per_path():
    before = compile_caps("tools: [shell, read_file]\nlimits: {memory_mb: 1024}\n"
                          "env: {A: {secret: X}, B: {secret: Y}}\n")
    after = compile_caps("tools: [shell, write_file]\nlimits: {memory_mb: 2048}\n"
                         "network: {allowlist: [pypi.org]}\ncheckpoints: per_task\n"
                         "env: {A: {credential: X}, C: {secret: Z}}\n")
    assert diff(before, after) == {
        "added": [{"path": "env.A.credential", "value": "X"},
                  {"path": "env.C", "value": {"secret": "Z"}},
                  {"path": "network.allowlist", "value": "pypi.org"},
                  {"path": "tools", "value": "write_file"}],
        "removed": [{"path": "env.A.secret", "value": "X"},
                    {"path": "env.B", "value": {"secret": "Y"}},
                    {"path": "tools", "value": "read_file"}],
        "changed": [{"path": "checkpoints", "from": "none", "to": "per_task"},
                    {"path": "limits.memory_mb", "from": 1024, "to": 2048},
                    {"path": "network.mode", "from": "none", "to": "allowlist"}],
    }
    reverse = diff(after, before)
    assert reverse["added"] == diff(before, after)["removed"]
    assert [c["path"] for c in reverse["changed"]] == [
        "checkpoints", "limits.memory_mb", "network.mode"]


def test_diff_of_equal_sets_is_empty_and_accepts_stored_dicts():
    caps = compile_caps("tools: [shell]")
    assert diff(caps, caps.to_dict()) == {"added": [], "removed": [], "changed": []}


def test_control_characters_are_refused_at_their_position():
    assert only("tools: [shell]\nnetwork: n\x00ne\n") == {
        "line": 2, "column": 11, "path": "",
        "reason": "not valid YAML: the character #x0000 is not allowed"}
