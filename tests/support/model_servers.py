"""Local HTTP servers that speak the Anthropic Messages and OpenAI Chat Completions wire
protocols, so the official SDKs run unmodified against them in tests.

A server plays ``turns``, one per POST, in order. A turn is a dict:

- ``text``, ``tool_calls`` (``[{"name", "arguments"}]``), ``thinking`` (Anthropic),
  ``stop`` (``"max_tokens"`` for a reply cut off by the output limit), ``usage``
  (``(input, output)``), ``chunks`` (how many deltas the text is streamed in);
- ``status`` with ``error_type``, ``message``, ``headers`` (e.g. ``retry-after``): an
  HTTP error with the provider's own error body;
- ``stream_error`` (an error type) after ``text`` has been streamed: a stream that
  breaks mid-reply, the way each provider reports it;
- ``stall``: seconds to hold the stream open after the first delta, ``delay_headers``
  seconds before answering at all (cancel tests); ``unsigned``: a reply cut off by the
  output limit while thinking (Anthropic).

Every request is recorded in ``requests`` (path, headers, JSON body). A request without
the expected API key gets the provider's real 401.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count

_ids = count(1)


def _chunks(text: str, parts: int) -> list[str]:
    if not text:
        return []
    size = max(1, -(-len(text) // max(1, parts)))
    return [text[i:i + size] for i in range(0, len(text), size)]


class ModelServer:
    """A provider's API on 127.0.0.1: ``protocol`` is ``anthropic`` or ``openai``."""

    def __init__(self, protocol: str, api_key: str | None = "sk-test-key-0123456789",
                 models: list[str] | None = None) -> None:
        self.protocol, self.api_key = protocol, api_key
        self.models = models if models is not None else (
            ["claude-sonnet-4-5-20250929", "claude-3-5-haiku-custom"] if protocol == "anthropic"
            else ["gpt-4o", "o3-mini"])
        self.models_status: int | None = None  # an error status for GET /models
        self.turns: list[dict] = []
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server._get(self)

            def do_POST(self):
                server._post(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """The base URL a provider of this kind is configured with (the SDK's own
        convention: Anthropic's has no /v1, OpenAI's has it)."""
        root = f"http://127.0.0.1:{self.port}"
        return root if self.protocol == "anthropic" else root + "/v1"

    def start(self) -> ModelServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def posts(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST"]

    # -- plumbing ------------------------------------------------------------------

    def _record(self, handler, body) -> None:
        with self.lock:
            self.requests.append({"method": handler.command, "path": handler.path,
                                  "headers": {k.lower(): v for k, v in handler.headers.items()},
                                  "body": body})

    def _authorised(self, handler) -> bool:
        if self.api_key is None:
            return True
        if self.protocol == "anthropic":
            return handler.headers.get("x-api-key") == self.api_key
        return handler.headers.get("authorization") == f"Bearer {self.api_key}"

    def _json(self, handler, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        handler.send_header("request-id", f"req_{next(_ids)}")
        for name, value in (headers or {}).items():
            handler.send_header(name, str(value))
        handler.end_headers()
        handler.wfile.write(data)

    def _error(self, handler, status: int, error_type: str, message: str,
               headers: dict | None = None) -> None:
        if self.protocol == "anthropic":
            body = {"type": "error", "error": {"type": error_type, "message": message}}
        else:
            body = {"error": {"message": message, "type": error_type, "param": None,
                              "code": error_type}}
        self._json(handler, status, body, headers)

    def _unauthorised(self, handler) -> None:
        if self.protocol == "anthropic":
            self._error(handler, 401, "authentication_error", "invalid x-api-key")
        else:
            sent = (handler.headers.get("authorization") or "").removeprefix("Bearer ")
            masked = sent[:3] + "*" * 8 + sent[-4:] if len(sent) > 8 else sent
            self._error(handler, 401, "invalid_api_key",
                        f"Incorrect API key provided: {masked}. You can find your API key "
                        "at https://platform.openai.com/account/api-keys.")

    def _get(self, handler) -> None:
        self._record(handler, None)
        if not self._authorised(handler):
            return self._unauthorised(handler)
        path = handler.path.split("?")[0]
        if "/models/" in path:  # retrieve one: Anthropic resolves an alias to a dated id
            name = path.rsplit("/models/", 1)[1]
            found = next((m for m in self.models if m == name or (
                self.protocol == "anthropic" and m.startswith(name + "-"))), None)
            if found is None or self.models_status is not None:
                return self._error(handler, 404, "not_found_error", f"model: {name}")
            if self.protocol == "anthropic":
                return self._json(handler, 200, {"type": "model", "id": found,
                                                 "display_name": found,
                                                 "created_at": "2025-09-29T00:00:00Z"})
            return self._json(handler, 200, {"id": found, "object": "model",
                                             "created": 1700000000, "owned_by": "test"})
        if not path.endswith("/models"):
            return self._error(handler, 404, "not_found_error", "Not found")
        if self.models_status is not None:
            return self._error(handler, self.models_status, "api_error", "models unavailable")
        if self.protocol == "anthropic":
            data = [{"type": "model", "id": m, "display_name": m,
                     "created_at": "2025-02-19T00:00:00Z"} for m in self.models]
            return self._json(handler, 200, {
                "data": data, "has_more": False,
                "first_id": self.models[0] if self.models else None,
                "last_id": self.models[-1] if self.models else None})
        return self._json(handler, 200, {"object": "list", "data": [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "test"}
            for m in self.models]})

    def _post(self, handler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        body = json.loads(handler.rfile.read(length) or b"{}")
        self._record(handler, body)
        if not self._authorised(handler):
            return self._unauthorised(handler)
        with self.lock:
            turn = self.turns.pop(0) if self.turns else None
        if turn is None:
            return self._error(handler, 400, "invalid_request_error", "no more scripted turns")
        if turn.get("delay_headers"):
            time.sleep(turn["delay_headers"])
        if "status" in turn:
            return self._error(handler, turn["status"], turn.get("error_type", "api_error"),
                               turn.get("message", "scripted error"), turn.get("headers"))
        events = (self._anthropic_events if self.protocol == "anthropic"
                  else self._openai_events)(turn, body)
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("cache-control", "no-cache")
        handler.send_header("connection", "close")
        handler.end_headers()
        try:
            for index, event in enumerate(events):
                handler.wfile.write(event.encode())
                handler.wfile.flush()
                if index == 3 and turn.get("stall"):
                    time.sleep(turn["stall"])
        except (BrokenPipeError, ConnectionResetError):
            pass
        handler.close_connection = True

    # -- Anthropic Messages: the streamed event sequence ------------------------------

    def _anthropic_events(self, turn: dict, body: dict):
        def sse(kind: str, data: dict) -> str:
            return f"event: {kind}\ndata: {json.dumps(data)}\n\n"

        usage_in, usage_out = turn.get("usage", (100, 20))
        yield sse("message_start", {"type": "message_start", "message": {
            "id": f"msg_{next(_ids)}", "type": "message", "role": "assistant", "content": [],
            "model": body.get("model"), "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": usage_in, "output_tokens": 1,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}})
        yield sse("ping", {"type": "ping"})
        index = 0
        if turn.get("thinking"):
            yield sse("content_block_start", {"type": "content_block_start", "index": index,
                                              "content_block": {"type": "thinking",
                                                                "thinking": "", "signature": ""}})
            for part in _chunks(turn["thinking"], 2):
                yield sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                  "delta": {"type": "thinking_delta",
                                                            "thinking": part}})
            if turn.get("unsigned"):  # cut off by the output limit while thinking
                yield sse("message_delta", {"type": "message_delta", "delta": {
                    "stop_reason": "max_tokens", "stop_sequence": None},
                    "usage": {"output_tokens": usage_out}})
                yield sse("message_stop", {"type": "message_stop"})
                return
            yield sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                              "delta": {"type": "signature_delta",
                                                        "signature": f"sig-{index}-ok"}})
            yield sse("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        if turn.get("text"):
            yield sse("content_block_start", {"type": "content_block_start", "index": index,
                                              "content_block": {"type": "text", "text": ""}})
            for part in _chunks(turn["text"], turn.get("chunks", 3)):
                yield sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                  "delta": {"type": "text_delta", "text": part}})
            if turn.get("stream_error"):
                yield sse("error", {"type": "error", "error": {
                    "type": turn["stream_error"], "message": "Overloaded"}})
                return
            yield sse("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        elif turn.get("stream_error"):
            yield sse("error", {"type": "error", "error": {
                "type": turn["stream_error"], "message": "Overloaded"}})
            return
        for call in turn.get("tool_calls", []):
            yield sse("content_block_start", {"type": "content_block_start", "index": index,
                                              "content_block": {
                                                  "type": "tool_use", "id": f"toolu_{next(_ids)}",
                                                  "name": call["name"], "input": {}}})
            raw = call.get("raw", json.dumps(call.get("arguments", {})))
            for part in _chunks(raw, 3):
                yield sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                  "delta": {"type": "input_json_delta",
                                                            "partial_json": part}})
            yield sse("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        stop = turn.get("stop") or ("tool_use" if turn.get("tool_calls") else "end_turn")
        yield sse("message_delta", {"type": "message_delta",
                                    "delta": {"stop_reason": stop, "stop_sequence": None},
                                    "usage": {"output_tokens": usage_out}})
        yield sse("message_stop", {"type": "message_stop"})

    # -- OpenAI Chat Completions: streamed chunks ---------------------------------------

    def _openai_events(self, turn: dict, body: dict):
        chunk_id, created = f"chatcmpl-{next(_ids)}", int(time.time())

        def chunk(delta: dict | None, finish: str | None = None, usage=None) -> str:
            data = {"id": chunk_id, "object": "chat.completion.chunk", "created": created,
                    "model": body.get("model"), "system_fingerprint": "fp_test",
                    "choices": [] if delta is None else [
                        {"index": 0, "delta": delta, "logprobs": None,
                         "finish_reason": finish}]}
            if usage is not None:
                data["usage"] = usage
            return f"data: {json.dumps(data)}\n\n"

        yield chunk({"role": "assistant", "content": "", "refusal": None})
        for part in _chunks(turn.get("text", ""), turn.get("chunks", 3)):
            yield chunk({"content": part})
        if turn.get("stream_error"):
            yield "data: " + json.dumps({"error": {"message": "The server is overloaded",
                                                   "type": turn["stream_error"]}}) + "\n\n"
            return
        for number, call in enumerate(turn.get("tool_calls", [])):
            raw = call.get("raw", json.dumps(call.get("arguments", {})))
            yield chunk({"tool_calls": [{"index": number, "id": f"call_{next(_ids)}",
                                         "type": "function",
                                         "function": {"name": call["name"], "arguments": ""}}]})
            for part in _chunks(raw, 3):
                yield chunk({"tool_calls": [{"index": number,
                                             "function": {"arguments": part}}]})
        stop = {"max_tokens": "length"}.get(turn.get("stop"), turn.get("stop")) or (
            "tool_calls" if turn.get("tool_calls") else "stop")
        yield chunk({}, finish=stop)
        usage_in, usage_out = turn.get("usage", (100, 20))
        if (body.get("stream_options") or {}).get("include_usage"):
            yield chunk(None, usage={"prompt_tokens": usage_in, "completion_tokens": usage_out,
                                     "total_tokens": usage_in + usage_out})
        yield "data: [DONE]\n\n"
