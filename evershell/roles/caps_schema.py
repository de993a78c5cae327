"""The caps.yaml schema, written as data, and the small vocabulary it is written in.

Each spec checks one composed YAML node, reports problems at the node's position, and
returns the plain value (or ``INVALID``). Nodes that the structural pass in ``caps.py``
already refused (aliases, custom tags, bad or duplicate keys) are skipped silently, so
every problem is reported exactly once.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from evershell.roles import capset, hosts
from evershell.secrets import rules as secret_rules

INVALID = object()
_YAML = "tag:yaml.org,2002:"
PLAIN_TAGS = frozenset(_YAML + t for t in ("str", "int", "float", "bool", "null", "seq", "map"))
_STR = _YAML + "str"


class AliasNode(yaml.ScalarNode):
    """Stands where an alias was, so composing goes on and every problem is reported."""


def render_path(path: tuple) -> str:
    """``("limits", "memory_mb")`` → ``limits.memory_mb``; list indexes as ``tools[2]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def suggestion(word: str, choices: Iterable[str]) -> str:
    """``; did you mean 'x'?`` when one of ``choices`` is close to ``word``, else ``""``."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


class Problems:
    """Problems found so far, as (line, column, path, reason) with 1-based positions."""

    def __init__(self) -> None:
        self._items: list[tuple[int, int, str, str]] = []

    def add(self, node, path: tuple, reason: str) -> None:
        self.add_at(node.start_mark, path, reason)

    def add_at(self, mark, path: tuple, reason: str) -> None:
        self._items.append((mark.line + 1, mark.column + 1, render_path(path), reason))

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self) -> Iterator[tuple[int, int, str, str]]:
        return iter(self._items)


def _usable(node) -> bool:
    return not isinstance(node, AliasNode) and node.tag in PLAIN_TAGS


def _is_str(node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _STR


def _pairs(node: yaml.MappingNode) -> Iterator[tuple[Any, Any]]:
    """Key/value pairs with plain string keys, first occurrence only (the rest were
    reported by the structural pass)."""
    seen = set()
    for key, value in node.value:
        if _is_str(key) and not isinstance(key, AliasNode) and key.value not in seen:
            seen.add(key.value)
            yield key, value


class Spec:
    expected = "a value"

    def check(self, node, path: tuple, problems: Problems) -> Any:
        raise NotImplementedError


class Choice(Spec):
    def __init__(self, choices: Mapping[str, str], noun: str,
                 expected: str | None = None) -> None:
        self.choices, self.noun = choices, noun
        self.expected = expected or "one of: " + ", ".join(choices)

    def check(self, node, path, problems):
        if not _usable(node):
            return INVALID
        if not _is_str(node):
            problems.add(node, path, f"expected a {self.noun}, {self.expected}")
            return INVALID
        if node.value not in self.choices:
            problems.add(node, path, f"unknown {self.noun} {node.value!r}"
                                     f"{suggestion(node.value, self.choices)} "
                                     f"(expected {self.expected})")
            return INVALID
        return node.value


class Integer(Spec):
    def __init__(self, minimum: int, maximum: int, unit: str) -> None:
        self.minimum, self.maximum, self.unit = minimum, maximum, unit
        self.expected = f"a whole number of {unit} from {minimum} to {maximum}"

    def check(self, node, path, problems):
        if not _usable(node):
            return INVALID
        if not isinstance(node, yaml.ScalarNode) or node.tag != _YAML + "int":
            problems.add(node, path, f"expected {self.expected}")
            return INVALID
        try:
            value = SafeConstructor().construct_yaml_int(node)
        except ValueError:  # more digits than Python converts: out of any range anyway
            value = None
        if value is None or not self.minimum <= value <= self.maximum:
            shown = value if value is not None else "the number"
            problems.add(node, path, f"{shown} is out of range: expected {self.expected}")
            return INVALID
        return value


class Name(Spec):
    """The name of a secret or credential, spelled as those are (an environment variable
    name). Problems never quote the value: a person may have pasted the secret itself."""

    expected = "a secret or credential name (upper-case letters, digits and _, starting " \
               "with a letter, e.g. GITHUB_TOKEN)"

    def check(self, node, path, problems):
        if not _usable(node):
            return INVALID
        if not _is_str(node) or not secret_rules.NAME_PATTERN.match(node.value):
            problems.add(node, path, f"expected {self.expected}")
            return INVALID
        return node.value


class Host(Spec):
    """A host name, a ``*.`` wildcard over a domain, or an IP address (``hosts``)."""

    expected = "a host name such as api.github.com or *.pypi.org"

    def check(self, node, path, problems):
        if not _usable(node):
            return INVALID
        if not _is_str(node):
            problems.add(node, path, f"expected {self.expected}")
            return INVALID
        host, reason = hosts.normalise(node.value)
        if reason:
            problems.add(node, path, reason)
            return INVALID
        return host


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class EnvName(Spec):
    expected = "an environment variable name (letters, digits and _, not starting " \
               "with a digit)"

    def check(self, node, path, problems):
        name = node.value
        if not _ENV_NAME.match(name):
            problems.add(node, path, f"{name!r} is not {self.expected}")
            return INVALID
        if name in capset.RESERVED_ENV_NAMES:
            problems.add(node, path, f"{name} is reserved: the sandbox sets it itself")
            return INVALID
        prefix = next((p for p in capset.RESERVED_ENV_PREFIXES if name.startswith(p)), None)
        if prefix:
            problems.add(node, path, f"names starting with {prefix} are reserved")
            return INVALID
        return name


class Seq(Spec):
    def __init__(self, item: Spec, noun: str, min_items: int = 0) -> None:
        self.item, self.noun, self.min_items = item, noun, min_items
        self.expected = f"a list of {noun}"

    def check(self, node, path, problems):
        if not _usable(node):
            return INVALID
        if not isinstance(node, yaml.SequenceNode):
            problems.add(node, path, f"expected {self.expected}, e.g. [a, b]")
            return INVALID
        if len(node.value) < self.min_items:
            problems.add(node, path, f"expected at least {self.min_items} of {self.noun}")
            return INVALID
        values, first_line = [], {}
        for index, item in enumerate(node.value):
            value = self.item.check(item, path + (index,), problems)
            if value is INVALID:
                continue
            if value in first_line:
                problems.add(item, path + (index,), f"{value!r} is listed twice (first at "
                                                    f"line {first_line[value]})")
                continue
            first_line[value] = item.start_mark.line + 1
            values.append(value)
        return values


@dataclass(frozen=True)
class Field:
    spec: Spec
    required: bool = False


class Struct(Spec):
    """A closed mapping: unknown keys are problems, with a "did you mean"."""

    def __init__(self, fields: dict[str, Field], exactly_one: bool = False,
                 expected: str | None = None) -> None:
        self.fields, self.exactly_one = fields, exactly_one
        self.expected = expected or "a mapping with the keys " + ", ".join(fields)

    def check(self, node, path, problems):
        if not _usable(node):
            return INVALID
        if not isinstance(node, yaml.MappingNode):
            problems.add(node, path, f"expected {self.expected}")
            return INVALID
        result = {}
        for key, value in _pairs(node):
            field = self.fields.get(key.value)
            if field is None:
                problems.add(key, path + (key.value,),
                             f"unknown key {key.value!r}{suggestion(key.value, self.fields)} "
                             f"(allowed: {', '.join(self.fields)})")
                continue
            checked = field.spec.check(value, path + (key.value,), problems)
            if checked is not INVALID:
                result[key.value] = checked
        present = {key.value for key, _ in _pairs(node)} & set(self.fields)
        for name, field in self.fields.items():
            if field.required and name not in present:
                problems.add(node, path, f"missing the key {name!r}")
        if self.exactly_one and len(present) != 1:
            problems.add(node, path, f"expected {self.expected}")
        return result


class Map(Spec):
    """A mapping whose keys are checked by ``key`` and values by ``value``."""

    def __init__(self, key: Spec, value: Spec, noun: str) -> None:
        self.key, self.value = key, value
        self.expected = f"a mapping of {noun}"

    def check(self, node, path, problems):
        if not _usable(node):
            return INVALID
        if not isinstance(node, yaml.MappingNode):
            problems.add(node, path, f"expected {self.expected}")
            return INVALID
        result = {}
        for key, value in _pairs(node):
            name = self.key.check(key, path + (key.value,), problems)
            checked = self.value.check(value, path + (key.value,), problems)
            if name is not INVALID and checked is not INVALID:
                result[name] = checked
        return result


class Either(Spec):
    """A scalar form or a mapping form (``network: none`` / ``network: {allowlist: …}``)."""

    def __init__(self, scalar: Spec, mapping: Spec, expected: str) -> None:
        self.scalar, self.mapping, self.expected = scalar, mapping, expected

    def check(self, node, path, problems):
        if isinstance(node, yaml.MappingNode):
            return self.mapping.check(node, path, problems)
        if isinstance(node, yaml.SequenceNode) and _usable(node):
            problems.add(node, path, f"expected {self.expected}")
            return INVALID
        return self.scalar.check(node, path, problems)


_SOURCE = Name()
_NETWORK = "none, or a mapping {allowlist: [host, ...]}"
SCHEMA = Struct({
    "tools": Field(Seq(Choice(capset.TOOLS, "tool"), "tool names")),
    "network": Field(Either(
        Choice({"none": capset.NETWORK_MODES["none"]}, "network mode", expected=_NETWORK),
        Struct({"allowlist": Field(Seq(Host(), "host names", min_items=1), required=True)},
               expected="a mapping {allowlist: [host, ...]}"),
        expected=_NETWORK)),
    "limits": Field(Struct({name: Field(Integer(s.minimum, s.maximum, s.unit))
                            for name, s in capset.LIMITS.items()})),
    "env": Field(Map(EnvName(), Struct(
        {kind: Field(_SOURCE) for kind in capset.ENV_SOURCES}, exactly_one=True,
        expected="{secret: NAME} or {credential: NAME} (literal values are not allowed, "
                 "so no secret ever sits in a role)"),
        "environment variables to secret or credential names")),
    "checkpoints": Field(Choice(capset.CHECKPOINT_MODES, "checkpoint mode")),
})
