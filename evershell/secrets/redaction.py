"""Redaction (SPEC §7): every secret value a task could see is replaced by
``[secret:NAME]`` before any tool output, message or error is stored or streamed.

A value of ``MIN_ENCODED_LENGTH`` characters or more is also caught in the encodings a
command is likely to print it in — the documented list, each tested:

- JSON string escaping (ASCII-only and not);
- URL encoding (``quote`` with nothing safe, with ``/`` safe, ``quote_plus``; upper- and
  lower-case ``%xx`` escapes);
- base64, standard and URL-safe, at each of the three byte alignments it can take inside
  a longer encoded text (as in ``Authorization: Basic``), unwrapped;
- hex of its UTF-8 bytes, lower- and upper-case, contiguous (``xxd -p`` of a short value,
  ``od -An -tx1 | tr -d ' \\n'``, ``.hex()``);
- reversed (``rev``);
- one character per line (``fold -w1``, ``grep -o .``), with ``\\n`` or ``\\r\\n``;
- for multi-line values such as private keys, ``\\r\\n`` line ends and each long line on
  its own.

Not caught: encodings of encodings (base64 of hex...), hex with separators (``xxd``'s
grouped columns, ``od`` with spaces), line-wrapped base64, and anything else a program
computes from a value (a hash, an encryption): a sandboxed program can always transform
a value it holds; redaction stops accidental and routine leaks, not a determined one.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

_PERCENT = re.compile(r"%[0-9A-F]{2}")

# Encoded forms shorter than this would also match innocent text.
MIN_ENCODED_LENGTH = 8
# Lines of a multi-line value (a PEM body line is 64 characters) hidden on their own.
MIN_LINE_LENGTH = 16
# Text cut short (an output limit) ending in this much of the start of a form hides it.
MIN_PARTIAL_LENGTH = 4


def _base64_cores(raw: bytes) -> set[str]:
    """The part of ``raw``'s base64 that is the same wherever ``raw`` sits in a longer
    text: for each alignment, the 4-character groups made of ``raw``'s bytes alone."""
    # The whole encoding too, when the value is encoded alone: its last group (mixing
    # the value's last bytes with padding) is then hidden with the rest.
    whole = base64.b64encode(raw).decode()
    cores = {whole, whole.rstrip("=")} if len(whole) >= MIN_ENCODED_LENGTH else set()
    cores |= {form.translate(str.maketrans("+/", "-_")) for form in cores}
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
        url = {quote(value, safe=""), quote(value), quote_plus(value, safe="")}
        forms |= url | {_PERCENT.sub(lambda m: m.group(0).lower(), form) for form in url}
        forms |= {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
        forms |= _base64_cores(value.encode())
        forms |= {value.encode().hex(), value.encode().hex().upper()}
        forms |= {value[::-1], "\n".join(value), "\r\n".join(value)}
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

    def redact_part(self, text: str, start: int, end: int) -> str:
        """``text[start:end]`` redacted as part of ``text``: a form that crosses either
        edge is replaced whole rather than shown in part (``read_file`` with an offset)."""
        if self._pattern is None:
            return text[start:end]
        out, position = [], start
        for match in self._pattern.finditer(text):
            if match.end() <= start:
                continue
            if match.start() >= end:
                break
            out.append(text[position:max(position, match.start())])
            out.append(self._replacement(match))
            position = match.end()
        out.append(text[position:end])
        return "".join(out)

    def redact_cut(self, text: str) -> str:
        """Text that was cut short (an output limit): redacted, and when it ends in the
        first ``MIN_PARTIAL_LENGTH`` or more characters of a form, those are replaced too."""
        redacted = self.redact(text)
        for form, name in self._owner.items():
            for size in range(min(len(form) - 1, len(redacted)), MIN_PARTIAL_LENGTH - 1, -1):
                if redacted.endswith(form[:size]):
                    return redacted[:-size] + f"[secret:{name}]"
        return redacted

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
