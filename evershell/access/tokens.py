"""Verifying AuthKit session JWTs against the issuer's JWKS.

The key set is cached with an expiry and refetched when a token names an unknown
``kid`` (key rotation), at most once per ``REFETCH_INTERVAL`` so a flood of forged kids
cannot hammer the issuer. Only RS256 is accepted: ``alg=none`` and HS256-with-the-
public-key confusion fail before any signature check.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from typing import Any

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from evershell.core.errors import ErrorCode, EvershellError

log = logging.getLogger("evershell.tokens")

CACHE_TTL = 600.0
REFETCH_INTERVAL = 30.0
LEEWAY = 30  # seconds of clock skew tolerated on exp/iat/nbf
ALLOWED_ALGORITHMS = ["RS256"]


class _JwksCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # url → (keys, fetched at, last refetch for an unknown kid)
        self._entries: dict[str, tuple[KeySet, float, float]] = {}

    def _fetch(self, url: str) -> KeySet:
        response = requests.get(url, timeout=10)
        response.raise_for_status()
        return KeySet.import_key_set(response.json())

    def key_set(self, url: str, kid: str | None) -> KeySet:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(url)
            if entry is not None:
                keys, fetched_at, kid_refetch_at = entry
                fresh = now - fetched_at < CACHE_TTL
                knows_kid = kid is None or any(k.kid == kid for k in keys.keys)
                if fresh and knows_kid:
                    return keys
                if fresh and now - kid_refetch_at < REFETCH_INTERVAL:
                    return keys  # unknown kid, but we already looked for new keys moments ago
            try:
                keys = self._fetch(url)
            except (requests.RequestException, ValueError, JoseError) as exc:
                log.error("JWKS fetch from %s failed: %s", url, type(exc).__name__)
                if entry is not None:
                    return entry[0]
                raise EvershellError(ErrorCode.SERVICE_UNAVAILABLE,
                                     "The identity provider's keys are unavailable.",
                                     503) from exc
            refetch_for_kid = entry is not None and now - entry[1] < CACHE_TTL
            self._entries[url] = (keys, now, now if refetch_for_kid else 0.0)
            return keys

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


jwks_cache = _JwksCache()


def _unauthenticated(message: str) -> EvershellError:
    return EvershellError(ErrorCode.UNAUTHENTICATED, message, 401)


def verify_session_token(token: str, jwks_url: str, issuers: tuple[str, ...],
                         audience: str | None = None, now: float | None = None) \
        -> dict[str, Any]:
    """The claims of a valid AuthKit access token; 401 ``unauthenticated`` otherwise."""
    try:
        header = _header(token)
    except (ValueError, IndexError, JoseError):
        raise _unauthenticated("The session token is malformed.") from None
    if header.get("alg") not in ALLOWED_ALGORITHMS:
        raise _unauthenticated("The session token's algorithm is not accepted.")
    keys = jwks_cache.key_set(jwks_url, header.get("kid"))
    try:
        decoded = jwt.decode(token, keys, algorithms=ALLOWED_ALGORITHMS)
    except (JoseError, ValueError):
        raise _unauthenticated("The session token's signature is not valid.") from None
    claims = decoded.claims
    registry = jwt.JWTClaimsRegistry(
        leeway=LEEWAY, now=int(now) if now is not None else None,
        iss={"essential": True, "values": list(issuers)},
        sub={"essential": True}, exp={"essential": True},
        **({"aud": {"essential": True, "value": audience}} if audience else {}))
    try:
        registry.validate(claims)
    except JoseError as exc:
        error = getattr(exc, "error", "")
        if error == "expired_token":
            raise _unauthenticated("The session token has expired.") from None
        raise _unauthenticated(f"The session token is not valid ({error or 'claims'}).") \
            from None
    return claims


def _segment(token: str, index: int) -> dict[str, Any]:
    segment = token.split(".")[index]
    value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    if not isinstance(value, dict):
        raise ValueError("JWT segment is not an object")
    return value


def _header(token: str) -> dict[str, Any]:
    return _segment(token, 0)


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims without any check: for deciding to refresh, never for trusting."""
    return _segment(token, 1)


def is_expired(claims: dict[str, Any], now: float | None = None) -> bool:
    return float(claims.get("exp", 0)) <= (now if now is not None else time.time())
