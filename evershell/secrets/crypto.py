"""Encryption at rest for secret values and credential material: AES-256-GCM under a
key ring from configuration.

``EVERSHELL_SECRETS_KEYS`` (or the app config key ``SECRETS_KEYS``, which wins) is a
comma list of ``<key_id>:<base64 of 32 bytes>``. The first key encrypts; every key
decrypts, so a key rotates by putting a new one first, re-encrypting
(``services.reencrypt_all``) and then dropping the old one. Each ciphertext records the id
of the key that sealed it.

Unset, a key derived from ``SECRET_KEY`` (id ``derived``) is used: fine for one machine,
but production must set ``EVERSHELL_SECRETS_KEYS`` so that rotating the session-signing
key does not strand every secret (``evershell up`` says so once, see
``derived_key_warning``). The derived key stays in the ring as a decrypt-only
fallback once real keys are configured, so rows sealed before can still be re-encrypted.

The associated data binds a ciphertext to its row (org id + row id): a ciphertext copied
into another row, or another org, fails to decrypt instead of leaking there.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask, current_app

from evershell.config import env
from evershell.core.crypto import derive_key

ENV_NAME = "EVERSHELL_SECRETS_KEYS"
CONFIG_NAME = "SECRETS_KEYS"
DERIVED_KEY_ID = "derived"
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
NONCE_BYTES = 12
_EXTENSION = "evershell-secrets-keyring"


class KeyConfigError(RuntimeError):
    """The configured key ring is malformed (the message never contains key material)."""


class DecryptionError(RuntimeError):
    """A stored ciphertext cannot be opened: unknown key id, wrong row, or tampering."""


@dataclass(frozen=True)
class Sealed:
    key_id: str
    ciphertext: bytes  # nonce + AES-GCM output (ciphertext and tag)


@dataclass(frozen=True)
class KeyRing:
    primary_id: str
    keys: dict[str, bytes]

    def encrypt(self, plaintext: bytes, aad: bytes) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        data = AESGCM(self.keys[self.primary_id]).encrypt(nonce, plaintext, aad)
        return Sealed(self.primary_id, nonce + data)

    def decrypt(self, sealed: Sealed, aad: bytes) -> bytes:
        key = self.keys.get(sealed.key_id)
        if key is None:
            raise DecryptionError(
                f"sealed with key {sealed.key_id!r}, which is not in {ENV_NAME}")
        raw = sealed.ciphertext
        try:
            return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad)
        except (InvalidTag, ValueError):
            raise DecryptionError(
                f"ciphertext does not open under key {sealed.key_id!r} for this row "
                "(tampered with, or copied from another row)") from None


def parse_keys(raw: str) -> list[tuple[str, bytes]]:
    """``id:base64,id:base64`` → [(id, 32-byte key)], in order."""
    keys: list[tuple[str, bytes]] = []
    for position, item in enumerate(part.strip() for part in raw.split(",")):
        if not item:
            continue
        key_id, sep, encoded = item.partition(":")
        key_id = key_id.strip()
        if not sep or not KEY_ID_PATTERN.match(key_id):
            raise KeyConfigError(f"{ENV_NAME} entry {position + 1}: expected "
                                 "<key_id>:<base64 of 32 bytes>, key id [A-Za-z0-9_.-]{1,32}")
        if key_id == DERIVED_KEY_ID:
            raise KeyConfigError(f"{ENV_NAME}: key id {DERIVED_KEY_ID!r} is reserved")
        if any(existing == key_id for existing, _ in keys):
            raise KeyConfigError(f"{ENV_NAME}: key id {key_id!r} appears twice")
        # Standard or URL-safe alphabet, padded or not: whatever the operator's tool printed.
        encoded = encoded.strip().translate(str.maketrans("-_", "+/")).rstrip("=")
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise KeyConfigError(f"{ENV_NAME}: key {key_id!r} is not base64") from None
        if len(key) != 32:
            raise KeyConfigError(f"{ENV_NAME}: key {key_id!r} must be 32 bytes "
                                 f"(got {len(key)})")
        keys.append((key_id, key))
    return keys


def _configured(app: Flask) -> str:
    value = app.config.get(CONFIG_NAME)
    if isinstance(value, list | tuple):
        value = ",".join(value)
    return (value or env(ENV_NAME) or "").strip()


def build_keyring(raw: str, secret_key: str) -> KeyRing:
    derived = derive_key(secret_key, "secrets-at-rest")
    configured = parse_keys(raw) if raw else []
    if not configured:
        return KeyRing(DERIVED_KEY_ID, {DERIVED_KEY_ID: derived})
    keys = dict(configured)
    keys[DERIVED_KEY_ID] = derived  # decrypt-only: rows sealed before keys were configured
    return KeyRing(configured[0][0], keys)


def keyring(app: Flask | None = None) -> KeyRing:
    """The app's key ring, rebuilt whenever its configuration changes."""
    app = app or current_app._get_current_object()
    raw, secret_key = _configured(app), app.config["SECRET_KEY"]
    cached = app.extensions.get(_EXTENSION)
    fingerprint = (raw, secret_key)
    if cached is None or cached[0] != fingerprint:
        ring = build_keyring(raw, secret_key)
        app.extensions[_EXTENSION] = cached = (fingerprint, ring)
    return cached[1]


def derived_key_warning(app: Flask) -> str | None:
    """What to tell the operator when secrets are sealed with the key derived from
    ``SECRET_KEY``, or None when a key ring is configured.

    Said once by the commands that start or check a deployment (``evershell up``), not by
    every process that happens to build the key ring.
    """
    if keyring(app).primary_id != DERIVED_KEY_ID:
        return None
    return (f"{ENV_NAME} is not set: secrets are encrypted with a key derived from "
            f"SECRET_KEY. Set {ENV_NAME} in production.")


def check_configuration(app: Flask) -> None:
    """Fail at start-up, not at the first secret, when the key ring is malformed."""
    keyring(app)


def row_aad(org_id: str, row_id: str) -> bytes:
    """Associated data binding a ciphertext to one row of one org."""
    return f"evershell/v1/{org_id}/{row_id}".encode()


def encrypt_text(plaintext: str, org_id: str, row_id: str) -> Sealed:
    return keyring().encrypt(plaintext.encode(), row_aad(org_id, row_id))


def decrypt_text(sealed: Sealed, org_id: str, row_id: str) -> str:
    return keyring().decrypt(sealed, row_aad(org_id, row_id)).decode()
