"""``Idempotency-Key`` on every create-class POST of ``/v1`` (SPEC §5), one mechanism in
the request guard (``guard.run_guarded``), after every guard check and before the view.

A key is scoped to (org, API key or user, method + concrete path, key): one row per
scope, whose id is the SHA-256 of the four. The flow:

1. **Claim** — the guard's own transaction ends, then the row is inserted and committed
   on its own, so a concurrent request with the same key sees it (the primary key makes
   the second insert fail; that request then reads the winner's row).
2. **Run** — the view runs. Its 2xx (or a 4xx it returns) is sealed into the row *in the
   view's transaction*: the mutation and its stored answer commit together or not at
   all. A 4xx it raises rolled the mutation back; the answer is stored in a transaction
   of its own. A 5xx, or any other failure, deletes the claim so a retry runs again;
   a request that dies outright (its worker killed) leaves a claim that lapses in 60 s.
3. **Retry** — the same body replays the stored answer (status, body, ``Location`` and
   the like, plus ``Idempotent-Replayed: true``); another body is 409
   ``idempotency_conflict``; a claim still unanswered is 409 ``idempotency_in_progress``.

Every write to a claimed row is fenced by the claim's random token, so a request that
lost its claim (it ran past the 60-second lease and a retry took the key over) cannot
store its answer: it rolls its mutation back and answers ``idempotency_in_progress``.
Exactly one request with a key commits its mutation.

Bodies are compared by an HMAC fingerprint (``request_hash``; multipart bodies by their
fields and file digests). Stored answers are sealed with the secrets key ring (a new API
key's answer holds its secret); the ring's old keys must stay for a day after a
rotation, or that day's answers cannot be replayed.

Guard refusals (401, 403, 423, 429, 415, a malformed key) happen before the claim and are
never stored. Rows live 24 hours from the claim; ``delete_expired`` removes older ones.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Response, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from evershell.access import request_hash
from evershell.access.principal import Principal, current_principal
from evershell.access.routes import Billing, Declaration
from evershell.core.db import UTCDateTime, utcnow
from evershell.core.errors import ErrorCode, EvershellError, envelope, validation_error
from evershell.extensions import db
from evershell.secrets.crypto import DecryptionError, Sealed, keyring, row_aad

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_PATTERN = re.compile(r"[\x20-\x7e]{1,255}")
CLAIM_LEASE = timedelta(seconds=60)  # a claim left unanswered this long died with its request
RETENTION = timedelta(hours=24)
# Headers of the first answer that a replay repeats (not X-Request-Id or rate limits:
# those describe the retry).
KEPT_HEADERS = ("Content-Type", "Location", "ETag", "Last-Modified", "Link", "Retry-After")


def clock() -> datetime:
    """Now (tests move it)."""
    return utcnow()


class IdempotencyKey(db.Model):
    """One key in its scope: a claim until ``response_status`` is set, then the answer."""

    __tablename__ = "idempotency_keys"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # SHA-256 of the scope
    org_id: Mapped[str] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False, index=True)
    principal: Mapped[str] = mapped_column(sa.String(48), nullable=False)  # key:… / user:…
    route: Mapped[str] = mapped_column(sa.Text, nullable=False)  # "POST /v1/secrets"
    key: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    request_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    claim_token: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    response_status: Mapped[int | None] = mapped_column(sa.Integer)
    response_key_id: Mapped[str | None] = mapped_column(sa.String(32))
    response_sealed: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:  # never the sealed answer
        return f"<IdempotencyKey {self.route} {self.key!r} status={self.response_status}>"


def applies(declaration: Declaration, method: str) -> bool:
    """Create-class POSTs take the header."""
    return (method.upper() == "POST" and declaration.billing is Billing.CREATE
            and not declaration.public)


@dataclass(frozen=True)
class Claim:
    """This request's hold on its key; it settles the claim once the view has answered."""

    row_id: str
    org_id: str
    token: str

    def store(self, result: Any) -> Response:
        """Seal the view's answer into the view's own transaction (the caller commits).
        A 5xx is not stored: the claim goes, in the same transaction."""
        response = current_app.make_response(result)
        if response.status_code >= 500:
            self._fenced(sa.delete(IdempotencyKey))
            return response
        if not self._seal(response.status_code, _kept_headers(response.headers),
                          response.get_data()):
            raise EvershellError(
                ErrorCode.IDEMPOTENCY_IN_PROGRESS,
                f"This request outlived its {int(CLAIM_LEASE.total_seconds())}-second claim "
                f"on its {HEADER} and a retry took the key over; this request changed "
                "nothing. Retry to get that request's answer.", 409,
                headers={"Retry-After": "1"})
        return response

    def settle_error(self, error: EvershellError) -> None:
        """After the view raised and its transaction rolled back: keep a 4xx answer, in a
        transaction of its own; drop the claim after a 5xx so a retry runs again."""
        if error.code in (ErrorCode.IDEMPOTENCY_IN_PROGRESS, ErrorCode.IDEMPOTENCY_CONFLICT):
            return  # the claim is no longer this request's
        if 400 <= error.status < 500:
            response = jsonify(envelope(error))
            headers = [("Content-Type", response.content_type),
                       *((k, v) for k, v in error.headers.items() if k in KEPT_HEADERS)]
            self._seal(error.status, headers, response.get_data())
        else:
            self._fenced(sa.delete(IdempotencyKey))
        db.session.commit()

    def release(self) -> None:
        """After an unexpected failure (the view's transaction rolled back): drop the
        claim so a retry runs again."""
        self._fenced(sa.delete(IdempotencyKey))
        db.session.commit()

    def _seal(self, status: int, headers: list[tuple[str, str]], body: bytes) -> bool:
        payload = json.dumps({"headers": headers,
                              "body": base64.b64encode(body).decode()}).encode()
        sealed = keyring().encrypt(payload, row_aad(self.org_id, self.row_id))
        return self._fenced(sa.update(IdempotencyKey).values(
            response_status=status, response_key_id=sealed.key_id,
            response_sealed=sealed.ciphertext, completed_at=clock()))

    def _fenced(self, statement) -> bool:
        """Run an UPDATE/DELETE of this claim's row, only while it is still this claim."""
        result = db.session.execute(
            statement.where(IdempotencyKey.id == self.row_id,
                            IdempotencyKey.claim_token == self.token,
                            IdempotencyKey.response_status.is_(None)),
            execution_options={"synchronize_session": False})
        return result.rowcount == 1


def claim(declaration: Declaration) -> Claim | Response | None:
    """For a create-class POST with an ``Idempotency-Key``: this request's claim on the
    key, or the stored answer of the request that used it first (a replay). None when
    the header is absent or the route does not take it. Raises 400 for a malformed key,
    409 ``idempotency_conflict`` / ``idempotency_in_progress``.

    Ends the request's transaction so far: the claim commits on its own, before the view.
    """
    if not applies(declaration, request.method):
        return None
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not KEY_PATTERN.fullmatch(key):
        raise validation_error(
            {HEADER: ["Must be 1 to 255 printable ASCII characters."]},
            f"The {HEADER} header must be 1 to 255 printable ASCII characters.")
    principal = current_principal()
    route = f"{request.method} {request.path}"
    owner = _principal_ref(principal)
    row_id = hashlib.sha256(json.dumps([principal.org_id, owner, route, key]).encode()
                            ).hexdigest()
    digest = request_hash.of_request()
    db.session.commit()  # what the guard read or touched so far; the claim commits alone
    now = clock()
    token = secrets.token_hex(16)
    row = db.session.get(IdempotencyKey, row_id)
    if row is None:
        db.session.add(IdempotencyKey(
            id=row_id, org_id=principal.org_id, principal=owner, route=route, key=key,
            request_hash=digest, claim_token=token, claimed_at=now,
            expires_at=now + RETENTION))
        try:
            db.session.commit()
            return Claim(row_id, principal.org_id, token)
        except IntegrityError:
            db.session.rollback()  # a concurrent request claimed it first: read its row
            row = db.session.get(IdempotencyKey, row_id)
    elif _reclaimable(row, now):
        if _take_over(row, digest, token, now):
            db.session.commit()
            return Claim(row_id, principal.org_id, token)
        row = db.session.get(IdempotencyKey, row_id, populate_existing=True)
    try:
        if row is None:  # claimed, then released after a 5xx, in between
            raise _in_progress()
        return _answer(row, digest)
    finally:
        db.session.rollback()  # only read


def _principal_ref(principal: Principal) -> str:
    if principal.api_key_id:
        return f"key:{principal.api_key_id}"
    return f"user:{principal.user_id}"


def _reclaimable(row: IdempotencyKey, now: datetime) -> bool:
    """Past its 24 hours, or a claim whose request died."""
    return row.expires_at <= now or (
        row.response_status is None and row.claimed_at <= now - CLAIM_LEASE)


def _take_over(row: IdempotencyKey, digest: str, token: str, now: datetime) -> bool:
    """Make an expired row this request's claim, unless another request got there first
    (or the first request answered meanwhile): the UPDATE re-checks both."""
    key = IdempotencyKey
    result = db.session.execute(
        sa.update(key).where(
            key.id == row.id, key.claim_token == row.claim_token,
            sa.or_(key.expires_at <= now,
                   sa.and_(key.response_status.is_(None),
                           key.claimed_at <= now - CLAIM_LEASE)),
        ).values(request_hash=digest, claim_token=token, claimed_at=now,
                 expires_at=now + RETENTION, response_status=None, response_key_id=None,
                 response_sealed=None, completed_at=None),
        execution_options={"synchronize_session": False})
    if result.rowcount == 1:
        return True
    db.session.rollback()
    return False


def _answer(row: IdempotencyKey, digest: str) -> Response:
    """A retry's answer from the first request's row: its replay, or a 409."""
    if not hmac.compare_digest(row.request_hash, digest):
        raise EvershellError(
            ErrorCode.IDEMPOTENCY_CONFLICT,
            f"This {HEADER} was used with a different request body; use a new key for a "
            "new request.", 409)
    if row.response_status is None:
        raise _in_progress()
    return _replay(row)


def _in_progress() -> EvershellError:
    return EvershellError(
        ErrorCode.IDEMPOTENCY_IN_PROGRESS,
        f"A request with this {HEADER} is still running; retry shortly for its answer.",
        409, headers={"Retry-After": "1"})


def _replay(row: IdempotencyKey) -> Response:
    try:
        plain = keyring().decrypt(Sealed(row.response_key_id, row.response_sealed),
                                  row_aad(row.org_id, row.id))
    except DecryptionError as exc:
        raise EvershellError(
            ErrorCode.INTERNAL_ERROR,
            f"The stored answer of this {HEADER} cannot be opened: {exc}", 500) from exc
    stored = json.loads(plain)
    response = Response(base64.b64decode(stored["body"]), status=row.response_status,
                        headers=[tuple(pair) for pair in stored["headers"]])
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _kept_headers(headers) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers.items() if name in KEPT_HEADERS]


# --- Housekeeping and documentation ----------------------------------------------------

def delete_expired(now: datetime | None = None) -> int:
    """Delete keys older than 24 hours (answered or not) and commit; returns how many.
    For the worker's schedule or ``evershell gc``."""
    result = db.session.execute(
        sa.delete(IdempotencyKey).where(IdempotencyKey.expires_at <= (now or clock())))
    db.session.commit()
    return result.rowcount


HEADER_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "description": (
        "Makes a retry safe. A retry with the same key and body, within 24 hours, returns "
        f"the first answer (2xx or 4xx) with `{REPLAYED_HEADER}: true` instead of running "
        "again; the same key with another body is 409 `idempotency_conflict`; while the "
        "first request still runs, 409 `idempotency_in_progress` (a claim whose request "
        "died lapses after 60 s). Scoped to the organisation, the API key (or user), and "
        "the method and path."),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255,
               "pattern": "^[\\x20-\\x7E]+$"},
}
REPLAYED_HEADER_DOC = {
    "description": "`true` when this is the stored answer of an earlier request with the "
                   f"same `{HEADER}`.",
    "schema": {"type": "string", "enum": ["true"]},
}


def document(operation: dict) -> frozenset[ErrorCode]:
    """Add the header (and the replay marker on successes) to a create-class POST's
    OpenAPI operation; returns the error codes it can add."""
    parameters = operation.setdefault("parameters", [])
    if not any(p.get("in") == "header" and p.get("name") == HEADER for p in parameters):
        parameters.append(dict(HEADER_PARAMETER))
    for status, response in operation.get("responses", {}).items():
        if str(status).startswith("2") and isinstance(response, dict):
            response.setdefault("headers", {})[REPLAYED_HEADER] = dict(REPLAYED_HEADER_DOC)
    return frozenset({ErrorCode.VALIDATION_ERROR, ErrorCode.IDEMPOTENCY_CONFLICT,
                      ErrorCode.IDEMPOTENCY_IN_PROGRESS})
