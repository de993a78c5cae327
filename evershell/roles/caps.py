"""The caps.yaml compiler: text → ``CapabilitySet``, or every problem with its position.

Parsing keeps PyYAML's node marks (``yaml.compose`` with a safe loader; nothing is ever
constructed from tags), so each problem carries the 1-based line and column of the node
at fault. Refused outright, because they make a small file mean something large or
ambiguous: documents over 64 KiB, anchors and aliases (billion laughs), merge keys,
custom tags, duplicate keys, non-string keys, nesting deeper than the schema could use.

The schema is data (``caps_schema.SCHEMA``, built from the registry in ``capset``): closed
mappings whose unknown keys are reported with a "did you mean" suggestion, enums, integer
ranges, host names, environment variable names. All problems are collected, then raised
together as one 422 ``invalid_capabilities``.

An empty caps.yaml compiles to the defaults: no tools, no network, the default limits, no
environment, no per-task checkpoints. Capabilities are granted, never assumed: a role
whose agent should run commands says ``tools: [shell, ...]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from evershell.core.errors import ErrorCode, EvershellError
from evershell.roles import capset
from evershell.roles.caps_schema import PLAIN_TAGS, SCHEMA, AliasNode, Problems
from evershell.roles.capset import CapabilitySet

MAX_DEPTH = 16  # the schema is 4 levels deep; far deeper input is an attack, not a typo
MAX_PROBLEMS = 50
_YAML = "tag:yaml.org,2002:"


@dataclass(frozen=True, order=True)
class Problem:
    line: int
    column: int
    path: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "path": self.path,
                "reason": self.reason}


class InvalidCapabilities(EvershellError):
    """422 ``invalid_capabilities``: ``details.errors`` lists every problem; the first
    one's ``line``, ``column``, ``path`` and ``reason`` are repeated at the top level."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)[:MAX_PROBLEMS]
        first = self.problems[0]
        where = f"line {first.line}, column {first.column}"
        more = len(problems) - 1
        message = f"caps.yaml does not compile: {first.reason} ({where})" + \
            (f"; and {more} more problem{'s' if more > 1 else ''}" if more else "")
        super().__init__(ErrorCode.INVALID_CAPABILITIES, message, 422,
                         {**first.to_dict(), "errors": [p.to_dict() for p in self.problems]})


class _TooDeep(Exception):
    def __init__(self, mark) -> None:
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """The pure-Python safe loader, composing only, remembering anchors and aliases so
    they are reported with their paths rather than expanded."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.anchored: dict[int, Any] = {}
        self.depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.get_event()
            return AliasNode("tag:yaml.org,2002:null", "", event.start_mark, event.end_mark)
        event = self.peek_event()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _TooDeep(event.start_mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if getattr(event, "anchor", None) is not None:
            self.anchored[id(node)] = event.start_mark
        return node


@dataclass(frozen=True)
class Compiled:
    capabilities: CapabilitySet
    defaulted: tuple[str, ...]  # top-level sections and limits left to their defaults


def compile_caps(text: str | None) -> CapabilitySet:
    """Compile caps.yaml ``text``; raises ``InvalidCapabilities`` listing every problem."""
    return compile_with_defaults(text).capabilities


def compile_with_defaults(text: str | None) -> Compiled:
    """Like ``compile_caps``, also saying which settings came from defaults."""
    text = text or ""
    size = len(text.encode("utf-8"))
    if size > capset.MAX_CAPS_BYTES:
        raise InvalidCapabilities([Problem(1, 1, "", f"caps.yaml is {size} bytes; the limit "
                                                     f"is {capset.MAX_CAPS_BYTES} bytes")])
    root, anchored = _compose(text)
    problems = Problems()
    _check_structure(root, (), anchored, problems)
    if root is None or root.tag == _YAML + "null":  # nothing, or an empty document
        values: dict[str, Any] = {}
    elif not isinstance(root, yaml.MappingNode):
        problems.add(root, (), "caps.yaml must be a mapping of sections: "
                               + ", ".join(SCHEMA.fields))
        values = {}
    else:
        values = SCHEMA.check(root, (), problems)
    if problems:
        raise InvalidCapabilities([Problem(line, column, path, reason)
                                   for line, column, path, reason in problems])
    return _build(values)


def _compose(text: str) -> tuple[Any, dict[int, Any]]:
    """The document's root node (None when empty) and the marks of anchored nodes."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:  # a control character YAML does not allow
        before = text[:exc.position]
        raise InvalidCapabilities([Problem(
            before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1, "",
            f"not valid YAML: the character #x{exc.character:04x} is not allowed")]) from None
    try:
        return loader.get_single_node(), loader.anchored
    except _TooDeep as exc:
        raise InvalidCapabilities([Problem(
            exc.mark.line + 1, exc.mark.column + 1, "",
            f"nested more than {MAX_DEPTH} levels deep")]) from None
    except yaml.MarkedYAMLError as exc:
        raise InvalidCapabilities([_syntax_problem(exc)]) from None
    finally:
        loader.dispose()


def _syntax_problem(exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    # Only PyYAML's own words: its snippet would echo the document (which may hold a
    # pasted secret) back into error responses and logs.
    reason = exc.problem or "syntax error"
    if exc.context:
        reason += f" ({exc.context})"
    return Problem(mark.line + 1 if mark else 1, mark.column + 1 if mark else 1, "",
                   f"not valid YAML: {reason}")


def _check_structure(node, path: tuple, anchored: dict, problems: Problems) -> None:
    """What YAML allows but caps.yaml refuses, wherever it appears."""
    if node is None:
        return
    if isinstance(node, AliasNode):
        problems.add(node, path, "aliases (*name) are not allowed; write the value out")
        return
    if id(node) in anchored:
        problems.add_at(anchored[id(node)], path,
                        "anchors (&name) are not allowed; write values out in full")
    if node.tag not in PLAIN_TAGS:
        problems.add(node, path, f"the tag {node.tag.replace(_YAML, '!!')} is not allowed; "
                                 "caps.yaml uses plain YAML values only")
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_structure(item, path + (index,), anchored, problems)
    elif isinstance(node, yaml.MappingNode):
        seen: dict[str, Any] = {}
        for key, value in node.value:
            if key.tag == _YAML + "merge":
                problems.add(key, path + ("<<",),
                             "merge keys (<<) are not allowed; write the keys out")
                continue
            if not isinstance(key, yaml.ScalarNode) or key.tag != _YAML + "str" \
                    or isinstance(key, AliasNode):
                label = (key.value,) if isinstance(key, yaml.ScalarNode) else ()
                problems.add(key, path + label, "keys must be plain strings (quote keys "
                                                "such as yes, no, on, off or numbers)")
                continue
            if key.value in seen:
                problems.add(key, path + (key.value,),
                             f"duplicate key {key.value!r} (first at line "
                             f"{seen[key.value].start_mark.line + 1})")
                continue
            seen[key.value] = key
            _check_structure(value, path + (key.value,), anchored, problems)


def _build(values: dict[str, Any]) -> Compiled:
    defaulted = [name for name in SCHEMA.fields if name not in values]
    limits = {name: spec.default for name, spec in capset.LIMITS.items()}
    given_limits = values.get("limits") or {}
    if "limits" in values:
        defaulted += [f"limits.{name}" for name in limits if name not in given_limits]
    limits.update(given_limits)
    network = values.get("network", "none")
    allowlist = tuple(sorted(set(network["allowlist"]))) if isinstance(network, dict) else ()
    env = tuple(sorted((var, kind, name) for var, source in values.get("env", {}).items()
                       for kind, name in source.items()))
    return Compiled(
        CapabilitySet(tools=tuple(sorted(values.get("tools", ()))),
                      network_mode="allowlist" if allowlist else "none",
                      network_allowlist=allowlist, limits=tuple(sorted(limits.items())),
                      env=env, checkpoints=values.get("checkpoints", "none")),
        tuple(sorted(defaulted)))


def explain(text: str | None) -> dict[str, Any]:
    """Compile ``text`` and describe the result (see ``describe``)."""
    compiled = compile_with_defaults(text)
    return describe(compiled.capabilities, compiled.defaulted)


def describe(caps: CapabilitySet, defaulted: tuple[str, ...] = ()) -> dict[str, Any]:
    """The compiled set with what a person reading it should know: which settings are
    defaults, and what the set will do when a workspace is provisioned."""
    notes = []
    if caps.network_mode == "allowlist":
        notes.append("network.mode is allowlist: provisioning a workspace from this role "
                     "fails with 409 network_policy_unsupported until the sandbox backend "
                     "supports egress allow-lists.")
    if not caps.tools:
        notes.append("No tools: the agent can only answer in text.")
    if caps.env:
        notes.append("env: secret and credential values reach the sandbox at exec time only "
                     "and are redacted as [secret:NAME] in every log and stream.")
    return {"capabilities": caps.to_dict(), "defaults_applied": list(defaulted),
            "notes": notes}
