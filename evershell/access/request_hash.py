"""A request's fingerprint for ``Idempotency-Key`` (``idempotency``): an HMAC-SHA256
(key derived from ``SECRET_KEY``; a plain hash of a short secret's value could be guessed
offline) of the query string, the media type and the body.

A multipart body is fingerprinted by its fields and the SHA-256 of each file part, not
its raw bytes: a client's retry writes a new boundary. File parts are read from the
parsed parts in chunks (for packs, windows of one spooled file, ``packs.multipart``) and
put back where they were, so the view reads them as if nothing had.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import BinaryIO

from flask import current_app, request

from evershell.core.crypto import derive_key

MULTIPART = "multipart/form-data"
_PURPOSE = "idempotency-request-hash"
_CHUNK = 1 << 16


def of_request() -> str:
    """HMAC-SHA256 of what the request asks: query string, media type and body; for a
    multipart body its fields and the digest of each file part."""
    key = derive_key(current_app.config["SECRET_KEY"], _PURPOSE)
    mac = hmac.new(key, digestmod=hashlib.sha256)
    mac.update(json.dumps([request.query_string.decode("latin-1"),
                           request.mimetype]).encode() + b"\n")
    if request.mimetype == MULTIPART:
        mac.update(_multipart_manifest())
    else:
        mac.update(request.get_data(cache=True))  # the JSON parser reads the same cache
    return mac.hexdigest()


def _multipart_manifest() -> bytes:
    """Fields and file digests, in the order sent (the boundary is left out)."""
    entries: list[list[str]] = [["field", name, value]
                                for name, value in request.form.items(multi=True)]
    entries += [["file", name, part.filename or "", _stream_digest(part.stream)]
                for name, part in request.files.items(multi=True)]
    return json.dumps(entries).encode()


def _stream_digest(stream: BinaryIO) -> str:
    """SHA-256 of a parsed file part, read in chunks; its position is put back for the view."""
    start = stream.tell()
    stream.seek(0)
    digest = hashlib.sha256()
    for chunk in iter(lambda: stream.read(_CHUNK), b""):
        digest.update(chunk)
    stream.seek(start)
    return digest.hexdigest()
