"""Talking to a provider's API: SDK clients, what a failure means, the model listing.

Both official SDKs (``anthropic``, ``openai``) run unmodified over an ``httpx`` client
of ours that differs from the default in two ways:

- **SSRF at connect time.** The connection pool's network backend resolves the host
  itself, judges every address with ``ssrf.check_address`` (under the operator's
  setting as it is *now*) and connects to the address it judged, so a name whose DNS
  answer changed to a private or metadata address since the provider was saved is
  refused. TLS still verifies the certificate against the host name.
- **No hidden retries, no ambient proxy.** ``max_retries=0`` on the SDK clients: the
  agent loop's backoff (``agent.retry``) is the only one, so a cancel interrupts it.
  ``trust_env=False``: an ``HTTP(S)_PROXY`` in the worker's environment would otherwise
  carry requests to a proxy the address check never sees.

:func:`failure` turns whatever a call raised into a :class:`ProviderFailure`: a code
(documented with the task schema), a message safe to show (it never carries the API key
or the provider's echo of it), whether the provider says to retry and after how long.
"""

from __future__ import annotations

import contextlib
import email.utils
import ipaddress
import json
import re
import socket
import threading
import time
from dataclasses import dataclass

import httpcore
import httpx

from evershell.config import env
from evershell.providers import ssrf

CONNECT_TIMEOUT = 10.0
# Codes a failed model call ends a task with (also documented in tasks.schemas).
FAILURE_CODES = {
    "provider_auth_failed": "the provider refused the API key (401/403)",
    "provider_rate_limited": "429 after every retry, or a wait longer than allowed",
    "provider_quota_exhausted": "the account has no quota or credit left",
    "provider_overloaded": "503/529 overloaded after every retry",
    "provider_server_error": "5xx after every retry",
    "provider_timeout": "no answer within the timeout, after every retry",
    "provider_unreachable": "connection or DNS failure, after every retry",
    "provider_address_refused": "the base URL resolved to an address providers may not use",
    "provider_model_not_found": "the provider does not serve the role's model (404)",
    "provider_bad_request": "the provider refused the request as malformed or too large",
    "provider_stream_interrupted": "the reply stream broke after text had been streamed",
    "provider_error": "any other failure of the provider call",
}
# Anything that looks like an API key in a provider's message (OpenAI echoes a masked
# key in its 401 text; a proxy might echo it whole).
_KEYLIKE = re.compile(r"(?:sk|pk|rk|gsk|key|ak|api|token)[-_][A-Za-z0-9_\-*.]{6,}",
                      re.IGNORECASE)
_MAX_MESSAGE = 500


def setting_number(name: str, default: float) -> float:
    raw = env(name)
    try:
        return float(raw) if raw is not None else default
    except ValueError:
        return default


def read_timeout() -> float:
    """``EVERSHELL_PROVIDER_TIMEOUT_SECONDS``: the longest silence on a provider call."""
    return setting_number("EVERSHELL_PROVIDER_TIMEOUT_SECONDS", 300.0)


class GuardedBackend(httpcore.SyncBackend):
    """A network backend that connects only to addresses ``ssrf.check_address`` allows,
    resolving names itself so the address judged is the address connected to. It tries
    each allowed address in the resolver's order (IPv6 first may fail on a host without
    it), and keeps the sockets it opened so :meth:`abort` can cut them from any thread."""

    def __init__(self) -> None:
        super().__init__()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        allow_private = ssrf.allow_private_networks()
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            addresses = ssrf.resolve(host, port)
            if not addresses:
                raise httpcore.ConnectError(f"{host} does not resolve") from None
        refusal, last_error = None, None
        for address in addresses:
            try:
                ssrf.check_address(address, allow_private)
            except ssrf.UnsafeURL as error:
                refusal = refusal or error
                continue
            try:
                stream = super().connect_tcp(address, port, timeout=timeout,
                                             local_address=local_address,
                                             socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
                continue
            with self._lock:
                self._sockets = [s for s in self._sockets if s.fileno() != -1]
                self._sockets.append(stream.get_extra_info("socket"))
            return stream
        raise last_error or refusal or httpcore.ConnectError(f"{host} resolves to no address")

    def abort(self) -> None:
        """Shut down every open connection of this backend: a read blocked on one of
        them (waiting for headers or the next event) returns at once."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)


def http_client(timeout: float | None = None,
                backend: GuardedBackend | None = None) -> httpx.Client:
    """An ``httpx`` client for provider calls: address-guarded (on ``backend``, or a
    backend of its own), no proxy from the environment, ``timeout`` (default the
    configured one) between bytes."""
    transport = httpx.HTTPTransport(trust_env=False)
    # httpx does not take a network backend; the pool it built is replaced by the same
    # pool on the guarded backend (tests/agent/test_provider_adapters.py checks it holds).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=transport._pool._ssl_context, max_connections=20,
        max_keepalive_connections=10, keepalive_expiry=30.0,
        network_backend=backend or GuardedBackend())
    read = timeout if timeout is not None else read_timeout()
    return httpx.Client(transport=transport, trust_env=False, follow_redirects=False,
                        timeout=httpx.Timeout(read, connect=CONNECT_TIMEOUT))


def load_sdks() -> None:
    """Import both SDKs now (about half a second): a worker does it before forking its
    work horses, so no task pays for it, and a check before it starts its clock."""
    import anthropic  # noqa: F401
    import openai  # noqa: F401


def anthropic_client(base_url: str, api_key: str, timeout: float | None = None,
                     backend: GuardedBackend | None = None):
    """The official Anthropic SDK client, with no retries of its own."""
    import anthropic
    return anthropic.Anthropic(api_key=api_key, base_url=base_url, max_retries=0,
                               http_client=http_client(timeout, backend))


def openai_client(base_url: str, api_key: str | None, timeout: float | None = None,
                  backend: GuardedBackend | None = None):
    """The official OpenAI SDK client, with no retries of its own. An
    ``openai_compatible`` server without a key gets a placeholder (the SDK insists on
    one; local servers ignore it). The organisation and project the SDK would read from
    the worker's environment are not sent: a provider's base URL is an org's choice."""
    import openai
    client = openai.OpenAI(api_key=api_key or "no-key", base_url=base_url, max_retries=0,
                           http_client=http_client(timeout, backend))
    client.organization = client.project = None  # not OPENAI_ORG_ID / OPENAI_PROJECT_ID
    return client


def missing_key(kind: str, api_key: str | None, provider: str) -> ProviderFailure | None:
    """The failure of calling ``kind`` without the key it needs, or None."""
    if kind in ("anthropic", "openai") and not api_key:
        return ProviderFailure("provider_auth_failed", (
            f"{provider} has no API key: the secret its api_key_secret_id names is missing "
            "or empty."))
    return None


@dataclass
class ProviderFailure(Exception):
    """A provider call that failed: ``code`` (see ``FAILURE_CODES``), a ``message``
    safe to store and show, and whether (and after how long) to retry."""

    code: str
    message: str
    retryable: bool = False
    retry_after: float | None = None
    status: int | None = None

    def __str__(self) -> str:
        return self.message


def scrub(text: str, secret: str | None = None) -> str:
    """A provider's message with the key (``secret``, in any of the spellings an error
    might quote it in) and anything else key-like masked, shortened for storage."""
    text = text or ""
    if secret:
        for form in sorted({secret, secret.strip(), repr(secret)[1:-1],
                            repr(secret.encode())[2:-1], json.dumps(secret)[1:-1]},
                           key=len, reverse=True):
            if len(form) >= 4:
                text = text.replace(form, "[redacted]")
    text = _KEYLIKE.sub("[redacted]", text).strip()
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE - 1] + "…"


def retry_after(headers) -> float | None:
    """Seconds the provider asked to wait: ``retry-after-ms``, ``retry-after`` as
    seconds or as an HTTP date; None when it did not say."""
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _provider_message(error) -> tuple[str, str]:
    """The (error type, message) a provider put in its error body, as far as known."""
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            kind = str(inner.get("type") or inner.get("code") or "")
            return kind, str(inner.get("message") or "")
        if isinstance(inner, str):
            return "", inner
    return "", str(getattr(error, "message", "") or "")


def _cause(error: BaseException, kind: type) -> BaseException | None:
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, kind):
            return error
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


_STREAM_ERRORS = {  # error types a stream reports mid-reply, as HTTP statuses
    "overloaded_error": 529, "rate_limit_error": 429, "api_error": 500,
    "authentication_error": 401, "permission_error": 403, "not_found_error": 404,
    "invalid_request_error": 400, "request_too_large": 413, "timeout_error": 504,
    "server_error": 500, "rate_limit_exceeded": 429,  # OpenAI's in-stream error types
}


def failure(error: BaseException, provider: str = "the provider",
            secret: str | None = None) -> ProviderFailure:
    """What ``error`` (raised by an SDK call or our transport) means for a task; every
    message is scrubbed of ``secret`` (the API key) and anything else key-like."""
    if isinstance(error, ProviderFailure):
        error.message = scrub(error.message, secret)
        return error
    if _cause(error, httpx.LocalProtocolError) or _cause(error, httpcore.LocalProtocolError):
        # e.g. "Illegal header value b'Bearer …'": the key is not a valid header value,
        # and the library's message quotes it.
        return ProviderFailure("provider_auth_failed", (
            f"{provider}'s API key cannot be sent: it is not a valid HTTP header value "
            "(a space, line break or non-ASCII character in the secret?)."))
    refused = _cause(error, ssrf.UnsafeURL)
    if refused is not None:
        return ProviderFailure("provider_address_refused",
                               f"{provider}'s address was refused: {refused}")
    status = getattr(error, "status_code", None)
    kind, message = _provider_message(error)
    if status in (None, 200) and kind in _STREAM_ERRORS:  # an error event inside a stream
        status = _STREAM_ERRORS[kind]
    if status is None:
        name = type(error).__name__
        if name == "APITimeoutError" or _cause(error, httpx.TimeoutException):
            return ProviderFailure("provider_timeout",
                                   f"{provider} did not answer in time.", retryable=True)
        if name == "APIConnectionError" or _cause(error, httpx.TransportError) \
                or _cause(error, OSError):
            detail = _cause(error, httpx.TransportError) or _cause(error, OSError)
            reason = scrub(str(detail), secret) if detail is not None else "connection failed"
            return ProviderFailure("provider_unreachable",
                                   f"{provider} could not be reached: {reason}",
                                   retryable=True)
        return ProviderFailure("provider_error", f"{provider} call failed: "
                               f"{name}: {scrub(str(error), secret)}")
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    wait = retry_after(headers)
    said = (headers.get("x-should-retry") if headers is not None else None) or ""
    detail = f" ({kind})" if kind else ""
    text = scrub(message, secret)
    if status in (401, 403):
        return ProviderFailure("provider_auth_failed", (
            f"{provider} refused the API key (HTTP {status}{detail}). Check the secret the "
            "provider's api_key_secret_id names."), status=status)
    if status == 429 and kind in ("insufficient_quota", "billing_error"):
        return ProviderFailure("provider_quota_exhausted",
                               f"{provider} says the account is out of quota: {text}",
                               status=status)
    if status == 404:
        return ProviderFailure("provider_model_not_found",
                               f"{provider} answered 404{detail}: {text}", status=status)
    code, retryable = {
        408: ("provider_timeout", True), 409: ("provider_server_error", True),
        429: ("provider_rate_limited", True), 503: ("provider_overloaded", True),
        529: ("provider_overloaded", True),
    }.get(status, ("provider_server_error", True) if status >= 500
          else ("provider_bad_request", False))
    if said.lower() == "true":
        retryable = True
    elif said.lower() == "false":
        retryable = False
    return ProviderFailure(code, f"{provider} answered HTTP {status}{detail}: {text}"
                           if text else f"{provider} answered HTTP {status}{detail}.",
                           retryable=retryable, retry_after=wait, status=status)


def list_models(kind: str, base_url: str, api_key: str | None,
                timeout: float = 15.0) -> list[str]:
    """The model ids the provider lists (every page); raises what the SDK raises."""
    if kind == "anthropic":
        with anthropic_client(base_url, api_key or "", timeout) as client:
            return [model.id for model in client.models.list(limit=1000)]
    with openai_client(base_url, api_key, timeout) as client:
        return [model.id for model in client.models.list()]


def model_known(kind: str, base_url: str, api_key: str | None, name: str,
                timeout: float = 15.0) -> bool:
    """Whether the provider serves ``name`` though its listing does not show it: an
    alias (Anthropic lists ``claude-sonnet-4-5-20250929``, not ``claude-sonnet-4-5``)
    that its retrieve endpoint resolves. False on a 404; other failures raise."""
    factory = anthropic_client if kind == "anthropic" else openai_client
    with factory(base_url, api_key or ("" if kind == "anthropic" else None), timeout) as client:
        try:
            client.models.retrieve(name)
        except Exception as error:  # a 404 means unknown; anything else is reported
            if getattr(error, "status_code", None) in (400, 404):
                return False
            raise
    return True
