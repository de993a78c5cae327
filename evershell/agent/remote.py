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
import socket
import threading
from collections.abc import Callable, Iterator

from evershell.agent.adapters import Cancelled, ModelReply, ModelRequest
from evershell.agent.retry import Policy, with_retries
from evershell.providers.clients import ProviderFailure, failure

CANCEL_POLL_SECONDS = 0.1


class RemoteAdapter:
    """A model behind an HTTP API; ``label`` names it in failure messages."""

    label = "the provider"

    def __init__(self, *, model: str, base_url: str, api_key: str | None,
                 policy: Policy | None = None, timeout: float | None = None) -> None:
        self.model, self.base_url, self.api_key = model, base_url, api_key
        self.policy = policy or Policy.configured()
        self.timeout = timeout
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

    def complete(self, request: ModelRequest, *, on_text: Callable[[str], None],
                 cancel: threading.Event) -> ModelReply:
        label = f"{self.label} ({self.model})"
        streamed = False

        def forward(text: str) -> None:
            nonlocal streamed
            if text:
                streamed = True
                on_text(text)

        def attempt() -> ModelReply:
            try:
                return self._stream(request, forward, cancel)
            except Cancelled:
                raise
            except Exception as error:  # judged by failure(), raised as ProviderFailure
                if cancel.is_set():
                    raise Cancelled("cancelled while the reply was streaming") from None
                problem = failure(error, label)
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

    @staticmethod
    @contextlib.contextmanager
    def _closing_on_cancel(cancel: threading.Event, stream) -> Iterator[None]:
        """Cut ``stream``'s connection from a watcher thread as soon as ``cancel`` is set.

        Closing the response from another thread would wait for the reader's lock; a
        ``shutdown`` of the socket makes the blocked read return at once instead."""
        done = threading.Event()

        def watch() -> None:
            while not done.wait(CANCEL_POLL_SECONDS):
                if cancel.is_set():
                    _shutdown(stream)
                    return

        watcher = threading.Thread(target=watch, name="model-call-cancel", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()
            with contextlib.suppress(Exception):
                stream.close()


def _shutdown(stream) -> None:
    """Shut down the socket under an SDK stream (both SDKs keep the httpx response)."""
    response = getattr(stream, "response", None)
    network = getattr(response, "extensions", {}).get("network_stream")
    sock = network.get_extra_info("socket") if network is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed by the other side
            sock.shutdown(socket.SHUT_RDWR)
