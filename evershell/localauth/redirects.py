"""Which URLs the server may redirect a browser to (``redirect_uri``, ``return_to``)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit


def _split(url: str) -> SplitResult | None:
    # Whitespace, control characters and backslashes are read differently by browsers and
    # by urlsplit; refusing them outright removes that whole class of mismatch.
    if not url or any(ch <= " " or ch == "\\" for ch in url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts


def is_allowed_redirect(url: str, prefixes: Iterable[str]) -> bool:
    """True when ``url`` falls under one of the configured prefixes.

    A plain ``startswith`` would accept ``http://localhost.evil.com`` or
    ``http://localhost:80@evil.com`` for the prefix ``http://localhost``, so both sides are
    parsed and compared by scheme, host, port (when the prefix names one) and path segments.
    """
    target = _split(url)
    if target is None or target.username is not None or target.password is not None:
        return False
    for prefix in prefixes:
        allowed = _split(prefix)
        if allowed is None:
            continue
        if (target.scheme, target.hostname) != (allowed.scheme, allowed.hostname):
            continue
        if allowed.port is not None and target.port != allowed.port:
            continue
        base = allowed.path.rstrip("/")
        if base and not (target.path == base or target.path.startswith(base + "/")):
            continue
        return True
    return False
