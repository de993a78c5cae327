"""Every example the product shows compiles: caps.yaml snippets in the capabilities
registry (API and console reference), the starter caps.yaml of the role form, the
scripted provider's placeholder script, and the README's caps.yaml and script blocks.
Each is extracted from where a person sees it and checked with the real compiler or
validator (and, for scripts, the registry's tool names)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from evershell.providers.script import script_errors
from evershell.roles import capset
from evershell.roles.caps import compile_caps
from tests.factories import make_member, make_org

README = Path(__file__).resolve().parent.parent / "README.md"
SNIPPET = re.compile(r"`([^`]*:\s*\{[^`]*\})`")  # `KEY: {…}` in a description


def check_script(script) -> None:
    """Valid for the validator, and every tool call names a real tool the way the
    agent's tools take them."""
    assert script_errors(script) is None, script_errors(script)
    for step in script:
        for call in step.get("tool_calls", []):
            assert call["name"] in capset.TOOLS, f"no tool {call['name']!r}"
            if call["name"] == "shell":
                assert isinstance(call["arguments"].get("command"), str)


def registry_snippets() -> list[tuple[str, str]]:
    """(where, caps.yaml text) of every snippet the registry's descriptions show; an
    env source's snippet sits under ``env:``."""
    reference = capset.registry()
    found = []
    for section, wrap in (("env_sources", "env:\n  {}\n"), ("network_modes", "{}\n"),
                          ("checkpoint_modes", "{}\n"), ("tools", "{}\n")):
        for entry in reference[section]:
            for snippet in SNIPPET.findall(entry["description"]):
                found.append((f"{section}.{entry['name']}", wrap.format(snippet)))
    return found


def readme_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def test_the_registry_shows_snippets_and_each_compiles():
    snippets = registry_snippets()
    # The two env sources and the allow-list show one each: none was silently dropped.
    assert {where for where, _ in snippets} >= {"env_sources.secret",
                                                "env_sources.credential",
                                                "network_modes.allowlist"}
    for where, text in snippets:
        compiled = compile_caps(text)  # raises InvalidCapabilities with line and reason
        assert compiled != capset.CapabilitySet(), where


def test_the_secret_example_names_a_secret_the_way_secrets_are_named():
    from evershell.secrets import rules
    (text,) = [t for where, t in registry_snippets() if where == "env_sources.secret"]
    ((_var, _kind, name),) = compile_caps(text).env
    assert rules.check_name(name) == name


def test_the_starter_caps_compile():
    assert "shell" in compile_caps(capset.STARTER_CAPS).tools


def test_readme_examples_compile():
    caps_blocks = readme_blocks("yaml")
    scripts = readme_blocks("json")
    assert caps_blocks and scripts
    for text in caps_blocks:
        compile_caps(text)
    for text in scripts:
        check_script(json.loads(text))


@pytest.fixture
def owner(app):
    return make_member(make_org(), role="owner")


def test_the_provider_forms_placeholder_script_is_valid(console_client, owner):
    page = console_client(owner).get("/settings/providers/new?kind=scripted")
    assert page.status_code == 200
    match = re.search(r'<textarea[^>]*name="script"[^>]*placeholder="([^"]*)"',
                      page.get_data(as_text=True))
    assert match, "the script field shows no example"
    check_script(json.loads(html.unescape(match.group(1))))


def test_the_role_forms_caps_and_reference_compile(console_client, owner):
    from tests.roles.conftest import make_provider
    make_provider(owner)
    page = console_client(owner).get("/settings/roles/new").get_data(as_text=True)
    prefilled = re.search(r'<textarea id="field-capabilities"[^>]*>(.*?)</textarea>',
                          page, flags=re.S)
    assert prefilled and compile_caps(html.unescape(prefilled.group(1))).tools
    reference = page[page.index('id="caps-reference"'):page.index("</details>")]
    shown = [html.unescape(s) for s in re.findall(r"<code>([^<]*:[^<]*)</code>", reference)]
    assert any("{secret:" in s for s in shown) and len(shown) >= 7
    for snippet in shown:
        # A top-level caps.yaml line, or an env entry (what the env sources show).
        top_level = snippet.split(":", 1)[0] in ("tools", "network", "limits", "env",
                                                 "checkpoints")
        compile_caps(snippet + "\n" if top_level else f"env:\n  {snippet}\n")
