"""``POST /v1/providers/{id}/check``: can Evershell reach this provider, does it take the
key, and does it serve each configured model?

The check calls the provider's model listing through the same guarded client the
adapters use (SSRF at connect time, no SDK retries, a 15 s timeout), so what it reports
is what a task would meet. It changes nothing and is read-class (never 423).
"""

from __future__ import annotations

import time
from typing import Any

from evershell.access.principal import Principal
from evershell.core.db import utcnow
from evershell.providers import clients
from evershell.providers.models import Provider
from evershell.providers.services import api_key, get

CHECK_TIMEOUT_SECONDS = 15.0
_UNREACHABLE = {"provider_unreachable", "provider_timeout", "provider_address_refused"}


def check(actor: Principal, provider_id: str) -> dict[str, Any]:
    """The check's report for one provider of the caller's org (archived ones too)."""
    provider = get(actor, provider_id)
    report: dict[str, Any] = {"provider_id": provider.id, "kind": provider.kind,
                              "base_url": provider.base_url, "checked_at": utcnow(),
                              "latency_ms": None, "code": None, "listed_models": None}
    if provider.kind == "scripted":
        return {**report, "ok": True, "reachable": None, "authenticated": None,
                "models": [{"name": m, "available": True} for m in provider.models],
                "message": "A scripted provider plays its stored script: there is nothing "
                           "to connect to."}
    key = _key(provider)
    absent = clients.missing_key(provider.kind, key, provider.name)
    if absent is not None:
        return {**report, **_failed(provider, absent), "reachable": None}
    clients.load_sdks()  # the first check of a process would otherwise time the import
    started = time.monotonic()
    try:
        listed = clients.list_models(provider.kind, provider.base_url, key,
                                     timeout=CHECK_TIMEOUT_SECONDS)
        report["latency_ms"] = round((time.monotonic() - started) * 1000)
        models = [{"name": m, "available": _listed(m, set(listed)) or clients.model_known(
            provider.kind, provider.base_url, key, m, timeout=CHECK_TIMEOUT_SECONDS)}
            for m in provider.models]
    except Exception as error:  # every failure is reported, not raised
        if report["latency_ms"] is None:
            report["latency_ms"] = round((time.monotonic() - started) * 1000)
        return {**report, **_failed(provider, clients.failure(error, provider.name, key))}
    missing = [m["name"] for m in models if not m["available"]]
    accepted = "the key works" if key is not None else "no key was needed"
    message = (f"Connected in {report['latency_ms']} ms; {accepted} and the provider "
               f"lists {len(listed)} models")
    message += (f", but not {', '.join(missing)}." if missing
                else ", including every configured one.")
    return {**report, "ok": not missing, "reachable": True, "authenticated": True,
            "listed_models": len(listed), "models": models, "message": message}


def _key(provider: Provider) -> str | None:
    found = api_key(provider)
    return found[1] if found is not None else None


def _listed(name: str, listed: set[str]) -> bool:
    """Listed as is, or as Ollama lists an untagged name (``llama3`` → ``llama3:latest``)."""
    return name in listed or (":" not in name and f"{name}:latest" in listed)


def _failed(provider: Provider, problem: clients.ProviderFailure) -> dict[str, Any]:
    unknown = [{"name": m, "available": None} for m in provider.models]
    reachable = problem.code not in _UNREACHABLE
    authenticated = False if problem.code == "provider_auth_failed" else None
    message = problem.message
    if problem.code == "provider_model_not_found":
        message = (f"The server answered, but has no model listing at "
                   f"{provider.base_url}/models, so the models could not be checked.")
    return {"ok": False, "reachable": reachable, "authenticated": authenticated,
            "code": problem.code, "models": unknown, "message": message}
