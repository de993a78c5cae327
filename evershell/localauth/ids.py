"""Identifiers shaped like AuthKit's: a prefix and a 26-character ULID in Crockford base32."""

from __future__ import annotations

import hashlib
import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _encode128(value: int) -> str:
    # 26 symbols hold 130 bits; a 128-bit value leaves the top symbol in 0-7, like a ULID.
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 0x1F])
        value >>= 5
    return "".join(reversed(chars))


def ulid() -> str:
    """A new ULID: 48 bits of milliseconds, then 80 random bits."""
    millis = int(time.time() * 1000) & ((1 << 48) - 1)
    return _encode128((millis << 80) | secrets.randbits(80))


def user_id_for_email(email: str) -> str:
    """The same ``user_...`` id for the same (case-insensitive) email, in every process."""
    digest = hashlib.sha256(email.strip().lower().encode("utf-8")).digest()
    return "user_" + _encode128(int.from_bytes(digest[:16], "big"))


def session_id() -> str:
    """A new ``session_...`` id."""
    return "session_" + ulid()


def opaque_token() -> str:
    """An unguessable token for authorization codes and refresh tokens (URL-safe)."""
    return secrets.token_urlsafe(32)
