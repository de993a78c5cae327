"""Retrying a model call the way the provider asks, and only that way.

The SDKs' own retries are off (``max_retries=0``), so this is the only backoff: a
failure the provider marks retryable (429, 408, 5xx, 529, timeouts, connection errors,
or ``x-should-retry: true``) is tried again after the provider's ``retry-after`` when it
gave one, else after an exponential backoff with jitter. Waiting is ``cancel.wait``, so
a cancel ends the wait at once. A ``retry-after`` longer than the configured maximum
fails the task now rather than holding a worker for it.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from evershell.agent.adapters import Cancelled
from evershell.providers.clients import ProviderFailure, failure, setting_number

T = TypeVar("T")
log = logging.getLogger(__name__)
BACKOFF_CAP_SECONDS = 60.0


@dataclass(frozen=True)
class Policy:
    """How often and how long to retry; read from the settings by :meth:`configured`."""

    retries: int = 4
    first_backoff: float = 1.0
    max_wait: float = 120.0

    @classmethod
    def configured(cls) -> Policy:
        return cls(
            retries=max(0, int(setting_number("EVERSHELL_PROVIDER_RETRIES", 4))),
            first_backoff=max(0.0, setting_number("EVERSHELL_PROVIDER_BACKOFF_SECONDS", 1.0)),
            max_wait=max(0.0, setting_number("EVERSHELL_PROVIDER_MAX_RETRY_WAIT_SECONDS",
                                             120.0)))

    def backoff(self, attempt: int) -> float:
        """The wait before retry ``attempt`` (1-based) when the provider named none:
        doubling from ``first_backoff``, capped, with up to half of it as jitter."""
        delay = min(BACKOFF_CAP_SECONDS, self.first_backoff * 2 ** (attempt - 1))
        return delay * (0.5 + random.random() / 2)


def with_retries(call: Callable[[], T], *, cancel: threading.Event, policy: Policy,
                 provider: str,
                 on_retry: Callable[[ProviderFailure, float, int], None] | None = None) -> T:
    """``call()``, retried on retryable provider failures; raises :class:`Cancelled` when
    ``cancel`` is set, else the last :class:`ProviderFailure`."""
    attempt = 0
    while True:
        if cancel.is_set():
            raise Cancelled("cancelled before the model call")
        try:
            return call()
        except Cancelled:
            raise
        except Exception as error:  # every provider failure is judged by failure()
            if cancel.is_set():
                raise Cancelled("cancelled during the model call") from None
            problem = failure(error, provider)
            attempt += 1
            if not problem.retryable or attempt > policy.retries:
                if problem.retryable:
                    problem.message += f" (gave up after {attempt} attempts)"
                raise problem from None
            wait = problem.retry_after if problem.retry_after is not None \
                else policy.backoff(attempt)
            if wait > policy.max_wait:
                problem.message += (f" The provider asked to wait {wait:.0f} s, longer than "
                                    f"EVERSHELL_PROVIDER_MAX_RETRY_WAIT_SECONDS "
                                    f"({policy.max_wait:.0f} s).")
                raise problem from None
            log.warning("%s; retry %d of %d in %.1f s", problem.message, attempt,
                        policy.retries, wait)
            if on_retry is not None:
                on_retry(problem, wait, attempt)
            if cancel.wait(wait):
                raise Cancelled("cancelled while waiting to retry the model call") from None
