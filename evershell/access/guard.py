"""What happens around every declared ``/v1`` view, in order:
authenticate (401) → org host check (403) → rate limit (429) → scopes (403, audited for
mutations) → billing class (423) → media type (415) → ``Idempotency-Key`` claim or replay
(create-class POSTs, ``idempotency``) → the view → commit, or roll back on any error.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable

import sqlalchemy as sa
from flask import Response, g, request

from evershell.access import billing, idempotency, ratelimit
from evershell.access.authn import authenticate, cookie_principal
from evershell.access.routes import Billing, Declaration, mutating_method, require
from evershell.core import inputs
from evershell.core.db import read_statements_alone
from evershell.core.errors import EvershellError
from evershell.extensions import db
from evershell.orgs.models import Org

log = logging.getLogger("evershell.guard")


def run_guarded(declaration: Declaration, view: Callable, args: tuple, kwargs: dict,
                console: bool = False):
    """Run ``view`` under ``declaration``; console pages authenticate by cookie only and
    are not rate limited (people click; scripts use the API).

    The pool does not ping a connection before each request; a request that finds
    its pooled connection dropped (a database restart, a proxy's idle timeout) is run
    once more on a fresh one instead: a read always, a change only when no statement of
    it had run yet (so nothing of it can have reached the database)."""
    token = _statements_ran.set(False)
    try:
        return _run(declaration, view, args, kwargs, console)
    except sa.exc.DBAPIError as exc:
        if not exc.connection_invalidated or (
                request.method not in ("GET", "HEAD") and _statements_ran.get()):
            raise
        log.warning("database connection dropped; running %s %s again", request.method,
                    request.path)
        db.session.rollback()
        return _run(declaration, view, args, kwargs, console)
    finally:
        _statements_ran.reset(token)


_statements_ran: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "evershell_statements_ran", default=True)


@sa.event.listens_for(sa.engine.Engine, "after_cursor_execute")
def _statement_ran(*_args, **_kwargs) -> None:
    _statements_ran.set(True)


def _run(declaration: Declaration, view: Callable, args: tuple, kwargs: dict, console: bool):
    g.declaration = declaration
    mutating = mutating_method()
    if not mutating and not console:
        read_statements_alone(db.session)
    if console:
        principal = cookie_principal(check_csrf=mutating)
    else:
        auth = authenticate(allow_query_key=declaration.sse, mutating=mutating)
        cached = "" if not auth.from_cache else (
            "unconfirmed" if auth.cached_epoch is None else str(auth.cached_epoch))
        verdict, epoch = ratelimit.take(auth.principal.org_id, auth.principal.api_key_id,
                                        cached)
        principal = auth.settle(epoch)  # a stale cached principal is read again: 401 first
        ratelimit.enforce(verdict)
        if verdict is not None:
            g.rate_limit_headers = verdict.headers()
    g.principal = principal
    claim = None
    try:
        require(declaration.requires, principal.scopes)
        if declaration.billing is Billing.CREATE:
            billing.ensure_can_create(db.session.get(Org, principal.org_id))
        if mutating and not console:
            inputs.ensure_body(view)
        if not console:
            claim = idempotency.claim(declaration)
            if isinstance(claim, Response):
                return claim  # a retry: the first request's stored answer
        result = view(*args, **kwargs)
        if claim is not None:
            result = claim.store(result)  # in the mutation's transaction
        db.session.commit()
        return result
    except EvershellError as exc:
        db.session.rollback()
        if claim is not None:
            claim.settle_error(exc)
        if exc.status == 403 and mutating:
            _audit_denied(declaration, exc)
        raise
    except BaseException as exc:
        db.session.rollback()
        if claim is not None and isinstance(exc, Exception):
            claim.release()  # a died request (not an Exception) leaves its claim to lapse
        raise


def _audit_denied(declaration: Declaration, exc: EvershellError) -> None:
    from evershell.audit import services as audit
    principal = g.principal
    target_id = next(iter(request.view_args.values()), None) if request.view_args else None
    audit.record_denied(
        principal.org_id, declaration.action or f"{request.method} {request.url_rule}",
        target_id=target_id, details={"code": exc.code.value, "reason": exc.message})
