"""Redaction (SPEC §7): every secret value a task could see is replaced by
``[secret:NAME]`` before any tool output, message or error is stored or streamed.

A value is also caught in the encodings a command is likely to print it in: JSON string
escaping, URL encoding, base64 (standard and URL-safe, at each of the three byte
alignments it can take inside a longer encoded text, as in ``Authorization: Basic``),
and, for multi-line values such as private keys, each long line on its own.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

# Encoded forms shorter than this would also match innocent text.
MIN_ENCODED_LENGTH = 8
# Lines of a multi-line value (a PEM body line is 64 characters) hidden on their own.
MIN_LINE_LENGTH = 16


def _base64_cores(raw: bytes) -> set[str]:
    """The part of ``raw``'s base64 that is the same wherever ``raw`` sits in a longer
    text: for each alignment, the 4-character groups made of ``raw``'s bytes alone."""
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + raw).decode()
        first_group = 4 if offset else 0  # the group mixing padding with raw
        core = encoded[first_group:4 * ((offset + len(raw)) // 3)]
        if len(core) >= MIN_ENCODED_LENGTH:
            cores.add(core)
            cores.add(core.translate(str.maketrans("+/", "-_")))
    return cores


def variants(value: str) -> set[str]:
    """Every form of ``value`` the redactor hides."""
    if not value:
        return set()
    forms = {value}
    if len(value) >= MIN_ENCODED_LENGTH:
        forms |= {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
                  quote(value, safe=""), quote_plus(value, safe="")}
        forms |= _base64_cores(value.encode())
        if "\n" in value:
            forms |= {value.replace("\n", "\r\n")}
            forms |= {line.strip() for line in value.splitlines()
                      if len(line.strip()) >= MIN_LINE_LENGTH
                      and not line.strip().startswith("-----")}
    return {form for form in forms if form}


class Redactor:
    """``Redactor({"API_TOKEN": "s3cr3t…"}).redact(text)`` → text with every form of every
    value replaced by ``[secret:API_TOKEN]``. A name may map to several values (the
    parts of a credential)."""

    def __init__(self, values: Mapping[str, str | Iterable[str]]) -> None:
        owner: dict[str, str] = {}
        for name, given in values.items():
            for value in [given] if isinstance(given, str) else given:
                for form in variants(value):
                    owner.setdefault(form, name)
        self._owner = owner
        # Longest first, so a value containing another is replaced whole.
        forms = sorted(owner, key=lambda form: (-len(form), form))
        self._pattern = re.compile("|".join(map(re.escape, forms))) if forms else None
        self.longest = len(forms[0]) if forms else 0

    def __repr__(self) -> str:
        return f"<Redactor of {sorted(set(self._owner.values()))}>"

    def _replacement(self, match: re.Match) -> str:
        return f"[secret:{self._owner[match.group(0)]}]"

    def redact(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(self._replacement, text)

    def stream(self) -> StreamRedactor:
        """A redactor for text that arrives in pieces (``message.delta``)."""
        return StreamRedactor(self)


class StreamRedactor:
    """Redacts a stream of chunks: a value split across two chunks is still caught,
    because the last ``longest - 1`` characters are held back until the next chunk (or
    ``flush``) shows whether they start a value."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._pending = ""

    def feed(self, chunk: str) -> str:
        """The redacted text that is safe to emit now (possibly empty)."""
        buffer = self._pending + chunk
        pattern = self._redactor._pattern
        if pattern is None:
            return buffer
        cut = max(0, len(buffer) - (self._redactor.longest - 1))
        out, position = [], 0
        for match in pattern.finditer(buffer):
            if match.start() >= cut:
                break
            # Every match starting before the cut is complete: the hold-back is as long
            # as the longest form. Emit it whole even when it reaches past the cut.
            out.append(buffer[position:match.start()])
            out.append(self._redactor._replacement(match))
            position = match.end()
            cut = max(cut, position)
        out.append(buffer[position:cut])
        self._pending = buffer[cut:]
        return "".join(out)

    def flush(self) -> str:
        """The rest, redacted, at the end of the stream."""
        rest, self._pending = self._pending, ""
        return self._redactor.redact(rest)
