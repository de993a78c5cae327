"""Prefixed, time-sortable identifiers (``org_01J…``).

The 26-character body is a ULID: 48 bits of milliseconds since the epoch followed by
80 random bits, in Crockford base32, so ids sort by creation time as plain strings.
Within one millisecond the random part is incremented, keeping ids from one process
strictly increasing.
"""

from __future__ import annotations

import re
import secrets
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0

PREFIXES = frozenset({
    "org", "user", "mem", "inv", "key", "aud", "prov", "role", "pack", "pkv", "cred", "sec",
    "ws", "task", "snap", "evt", "ses",
    "rolev",
})
ID_PATTERN = re.compile(r"^([a-z]+)_([0-9A-HJKMNP-TV-Z]{26})$")


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def ulid() -> str:
    """A new 26-character ULID, monotonic within this process."""
    global _last_ms, _last_rand
    with _lock:
        now = int(time.time() * 1000)
        if now <= _last_ms:
            now = _last_ms
            _last_rand = (_last_rand + 1) & ((1 << 80) - 1)
        else:
            _last_ms = now
            _last_rand = secrets.randbits(80)
        return _encode(now, 10) + _encode(_last_rand, 16)


def new_id(prefix: str) -> str:
    """A new id such as ``org_01J9Z…`` for one of the known resource prefixes."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{ulid()}"


def is_id(value: str, prefix: str) -> bool:
    """True when ``value`` is a well-formed id with ``prefix``."""
    match = ID_PATTERN.match(value or "")
    return bool(match) and match.group(1) == prefix


def id_timestamp_ms(value: str) -> int:
    """The creation time (ms since the epoch) encoded in an id."""
    body = value.split("_", 1)[1]
    result = 0
    for char in body[:10]:
        result = result * 32 + _ALPHABET.index(char)
    return result
