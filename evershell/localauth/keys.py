"""The server's RS256 signing key: loaded from a PEM file, created there when missing."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

log = logging.getLogger(__name__)

ALGORITHM = "RS256"


class SigningKey:
    """An RSA private key with a stable ``kid`` (its RFC 7638 thumbprint).

    Deriving the kid from the key itself means a restarted server that reloads the same
    file advertises the same kid, so tokens issued before the restart still verify.
    """

    def __init__(self, key: RSAKey) -> None:
        self._key = key
        self.kid = key.thumbprint()

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK, with ``kid``, ``alg`` and ``use``."""
        return {**self._key.as_dict(private=False), "kid": self.kid, "alg": ALGORITHM,
                "use": "sig"}

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact RS256 JWT of ``claims`` whose header names this key."""
        return jwt.encode({"alg": ALGORITHM, "typ": "JWT", "kid": self.kid}, claims, self._key)


def load_or_create_key(path: Path) -> SigningKey:
    """Load the PEM private key at ``path``; generate and save one (mode 0600) if absent."""
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        pem = _create_key_file(path)
    return SigningKey(RSAKey.import_key(pem))


def _create_key_file(path: Path) -> bytes:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL with the mode given at creation: the key is never readable by others, not even
    # briefly, and two processes starting together cannot overwrite each other's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    log.info("localauth: generated a new signing key at %s", path)
    return pem
