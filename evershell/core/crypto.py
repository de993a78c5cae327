"""Small cryptographic helpers: derived keys and sealed (encrypted + authenticated) blobs."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


@functools.lru_cache(maxsize=64)
def derive_key(secret: str, purpose: str, length: int = 32) -> bytes:
    """A key for one ``purpose`` from a configured secret (HKDF-SHA256); derived once per
    process (the inputs are configuration, a handful of them)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=b"evershell",
                info=purpose.encode()).derive(secret.encode())


def keyed_hash(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def seal(key: bytes, payload: dict[str, Any], purpose: str) -> str:
    """AES-256-GCM over JSON; ``purpose`` is bound as associated data."""
    nonce = os.urandom(12)
    data = AESGCM(key).encrypt(nonce, json.dumps(payload).encode(), purpose.encode())
    return base64.urlsafe_b64encode(nonce + data).decode().rstrip("=")


def unseal(key: bytes, sealed: str, purpose: str) -> dict[str, Any] | None:
    """The payload, or None when the blob was tampered with, truncated or sealed elsewhere."""
    try:
        raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
        if len(raw) < 12 + 16:
            return None
        plain = AESGCM(key).decrypt(raw[:12], raw[12:], purpose.encode())
        payload = json.loads(plain)
    except (InvalidTag, ValueError, TypeError):
        return None
    return payload if isinstance(payload, dict) else None
