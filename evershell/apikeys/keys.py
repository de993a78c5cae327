"""The API key format: ``sk_`` + 32 random base62 characters + a 6-character checksum.

The checksum (CRC32 of the random part, base62) lets a secret scanner recognise a leaked
key and lets us refuse a mistyped key before any database lookup. Keys carry 190 bits of
entropy, so a keyed SHA-256 (HMAC with a server pepper) is the right hash: a slow
password hash would add latency to every request and no security.
"""

from __future__ import annotations

import secrets
import zlib

from flask import current_app

from evershell.core.crypto import derive_key, keyed_hash

PREFIX = "sk_"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6
KEY_LENGTH = len(PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH


def _base62(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 62)
        chars.append(_BASE62[rem])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), CHECKSUM_LENGTH)


def generate() -> str:
    body = "".join(secrets.choice(_BASE62) for _ in range(RANDOM_LENGTH))
    return PREFIX + body + _checksum(body)


def well_formed(key: str) -> bool:
    """Shape and checksum only; says nothing about whether the key exists."""
    if len(key) != KEY_LENGTH or not key.startswith(PREFIX):
        return False
    body, checksum = key[len(PREFIX):-CHECKSUM_LENGTH], key[-CHECKSUM_LENGTH:]
    return all(c in _BASE62 for c in body) and secrets.compare_digest(checksum, _checksum(body))


def hash_key(key: str) -> str:
    config = current_app.config
    pepper = config.get("API_KEY_PEPPER") or config["SECRET_KEY"]
    return keyed_hash(derive_key(pepper, "api-key-hash"), key)
