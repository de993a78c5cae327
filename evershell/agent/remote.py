"""What the adapters of real providers share: retries, cancel, and a broken stream.

A subclass implements ``_stream(request, on_text, cancel)`` with its SDK and calls
:meth:`RemoteAdapter._closing_on_cancel` around the stream it opens. This base:

- retries through :func:`agent.retry.with_retries` (the only backoff);
- closes the open stream when the task's cancel Event is set, so a cancel does not wait
  for the provider's next byte;
- never retries once text has been streamed to the task (its deltas are already
  events; a retry would repeat them): such a failure is ``provider_stream_interrupted``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from evershell.agent.adapters import Cancelled, ModelReply, ModelRequest
from evershell.agent.retry import Policy, with_retries
from evershell.providers.clients import GuardedBackend, ProviderFailure, failure, missing_key

CANCEL_POLL_SECONDS = 0.1


class RemoteAdapter:
    """A model behind an HTTP API; ``label`` names it in failure messages."""

    label = "the provider"

    def __init__(self, *, model: str, base_url: str, api_key: str | None,
                 policy: Policy | None = None, timeout: float | None = None) -> None:
        self.model, self.base_url = model, base_url
        self.api_key = api_key.strip() if api_key else None  # a pasted key's line break
        self.policy = policy or Policy.configured()
        self.timeout = timeout
        self.backend = GuardedBackend()  # the client's connections, for a cancel to cut
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self):
        raise NotImplementedError

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def notes(self, thinking_effort: str) -> list[str]:
        """What ``task.started`` says about settings this provider does not take."""
        return []

    def extra_output_tokens(self, thinking_effort: str) -> int:
        """Output tokens a reply may spend beyond its text (thinking, reasoning): the
        loop keeps them free in the context window too."""
        return 0

    kind = "openai_compatible"

    def complete(self, request: ModelRequest, *, on_text: Callable[[str], None],
                 cancel: threading.Event) -> ModelReply:
        label = f"{self.label} ({self.model})"
        absent = missing_key(self.kind, self.api_key, label)
        if absent is not None:
            raise absent
        streamed = False

        def forward(text: str) -> None:
            nonlocal streamed
            if text:
                streamed = True
                on_text(text)

        def attempt() -> ModelReply:
            try:
                with self._cut_on_cancel(cancel):
                    return self._stream(request, forward, cancel)
            except Cancelled:
                raise
            except Exception as error:  # judged by failure(), raised as ProviderFailure
                if cancel.is_set():
                    raise Cancelled("cancelled while the reply was streaming") from None
                problem = failure(error, label, self.api_key)
                if streamed and problem.retryable:
                    raise ProviderFailure(
                        "provider_stream_interrupted",
                        f"the reply stream broke after it had begun: {problem.message}",
                        status=problem.status) from None
                raise problem from None

        return with_retries(attempt, cancel=cancel, policy=self.policy, provider=label)

    def _stream(self, request: ModelRequest, on_text: Callable[[str], None],
                cancel: threading.Event) -> ModelReply:
        raise NotImplementedError

    @contextlib.contextmanager
    def _cut_on_cancel(self, cancel: threading.Event) -> Iterator[None]:
        """Cut this adapter's connections from a watcher thread as soon as ``cancel`` is
        set: whether the call is sending, waiting for the response's headers or reading
        its stream, the blocked read returns at once. (Closing the response from another
        thread would wait for the reader's lock instead.)"""
        done = threading.Event()

        def watch() -> None:
            while not done.wait(CANCEL_POLL_SECONDS):
                if cancel.is_set():
                    self.backend.abort()
                    return

        watcher = threading.Thread(target=watch, name="model-call-cancel", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()
