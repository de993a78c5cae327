"""The anthropic, openai and openai_compatible adapters on the official SDKs, against
local servers that speak each provider's wire protocol (tests/support/model_servers.py):
what is sent, how streams become text, tool calls and usage, retries, failure codes,
cancel, and the SSRF check at connect time."""

from __future__ import annotations

import json
import threading
import time

import pytest

from evershell.agent.adapters import Cancelled, Message, ModelRequest, ToolCall, adapter_for
from evershell.agent.retry import Policy
from evershell.agent.tools import specs_for
from evershell.providers import ssrf
from evershell.providers.clients import ProviderFailure, failure, http_client
from tests.support.model_servers import ModelServer

KINDS = {"anthropic": ("anthropic", "claude-sonnet-4-5"),
         "openai": ("openai", "gpt-4o"),
         "openai_compatible": ("openai", "llama3.1")}
FAST = Policy(retries=3, first_backoff=0.01, max_wait=5)


@pytest.fixture(autouse=True)
def private_networks(monkeypatch):
    monkeypatch.setenv(ssrf.ALLOW_PRIVATE_SETTING, "true")


@pytest.fixture(params=sorted(KINDS))
def kind(request):
    return request.param


@pytest.fixture
def server(kind):
    server = ModelServer(KINDS[kind][0]).start()
    yield server
    server.stop()


def adapter(kind, server, model=None, key="use-server", policy=FAST):
    made = adapter_for(kind, model=model or KINDS[kind][1], base_url=server.base_url,
                       api_key=server.api_key if key == "use-server" else key)
    made.policy = policy
    return made


def request(messages=None, effort="medium", tools=("shell", "read_file")):
    return ModelRequest(system="You are terse.",
                        messages=messages or [Message(role="user", content="hi")],
                        tools=specs_for(set(tools)), thinking_effort=effort,
                        max_output_tokens=1000)


def complete(made, req=None, cancel=None):
    streamed: list[str] = []
    reply = made.complete(req or request(), on_text=streamed.append,
                          cancel=cancel or threading.Event())
    return reply, streamed


def test_text_streams_in_deltas_and_usage_is_the_providers(kind, server):
    server.turns = [{"text": "Hello there, friend.", "chunks": 4, "usage": (1234, 56)}]
    reply, streamed = complete(adapter(kind, server))
    assert "".join(streamed) == "Hello there, friend." and len(streamed) == 4
    assert (reply.text, reply.stop_reason) == ("Hello there, friend.", "end_turn")
    assert (reply.input_tokens, reply.output_tokens) == (1234, 56)
    assert len(server.posts()) == 1


def test_tool_calls_arrive_whole_from_streamed_json(kind, server):
    server.turns = [{"text": "Looking.", "tool_calls": [
        {"name": "shell", "arguments": {"command": "ls -la /data/work", "timeout_seconds": 5}},
        {"name": "read_file", "arguments": {"path": "notes.md"}}]}]
    reply, _ = complete(adapter(kind, server))
    assert reply.stop_reason == "tool_use"
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [
        ("shell", {"command": "ls -la /data/work", "timeout_seconds": 5}),
        ("read_file", {"path": "notes.md"})]
    assert all(c.id for c in reply.tool_calls)
    body = server.posts()[0]["body"]
    names = [t["name"] if kind == "anthropic" else t["function"]["name"] for t in body["tools"]]
    assert sorted(names) == ["read_file", "shell"]


def test_tool_results_go_back_in_each_providers_shape(kind, server):
    server.turns = [{"text": "Done."}]
    calls = [ToolCall(id="c1", name="shell", arguments={"command": "ls"}),
             ToolCall(id="c2", name="read_file", arguments={"path": "a"})]
    messages = [Message(role="user", content="list"),
                Message(role="assistant", content="", tool_calls=calls),
                Message(role="tool", content="a b", tool_call_id="c1", tool_name="shell"),
                Message(role="tool", content="text", tool_call_id="c2", tool_name="read_file")]
    complete(adapter(kind, server), request(messages))
    sent = server.posts()[0]["body"]["messages"]
    if kind == "anthropic":
        assert [m["role"] for m in sent] == ["user", "assistant", "user"]
        assert [b["type"] for b in sent[1]["content"]] == ["tool_use", "tool_use"]
        results = sent[2]["content"]  # both results in one user turn, in order
        assert [(b["tool_use_id"], b["content"]) for b in results] == [("c1", "a b"),
                                                                       ("c2", "text")]
        assert server.posts()[0]["body"]["system"][0]["cache_control"] == {"type": "ephemeral"}
    else:
        assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "tool"]
        assert sent[2]["tool_calls"][0]["function"] == {"name": "shell",
                                                        "arguments": '{"command": "ls"}'}
        assert [(m["tool_call_id"], m["content"]) for m in sent[3:]] == [("c1", "a b"),
                                                                          ("c2", "text")]


def test_a_reply_cut_off_by_the_output_limit_says_so(kind, server):
    server.turns = [{"text": "The first half", "stop": "max_tokens",
                     "tool_calls": [{"name": "shell", "raw": '{"command": "ec'}]}]
    reply, _ = complete(adapter(kind, server))
    # the half-written call is dropped: the loop's continuation asks for the rest
    assert (reply.stop_reason, reply.tool_calls) == ("max_tokens", [])


@pytest.mark.parametrize("effort,budget", [("low", 2048), ("high", 16384)])
def test_anthropic_thinking_effort_is_a_thinking_budget(effort, budget):
    server = ModelServer("anthropic").start()
    try:
        server.turns = [{"thinking": "Let me think.", "text": "Answer.",
                         "tool_calls": [{"name": "shell", "arguments": {"command": "ls"}}]},
                        {"text": "ok"}, {"text": "old model"}]
        made = adapter("anthropic", server)
        reply, streamed = complete(made, request(effort=effort))
        body = server.posts()[0]["body"]
        assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
        assert body["max_tokens"] == 1000 + budget
        assert "".join(streamed) == "Answer."  # thinking is not streamed as text
        # the signed thinking block goes back with its turn, as the API requires
        messages = [Message(role="user", content="hi"),
                    Message(role="assistant", content=reply.text,
                            tool_calls=reply.tool_calls, replay=reply.replay),
                    Message(role="tool", content="x", tool_call_id=reply.tool_calls[0].id)]
        complete(made, request(messages, effort=effort))
        turn = server.posts()[1]["body"]["messages"][1]["content"]
        assert turn[0] == {"type": "thinking", "thinking": "Let me think.",
                           "signature": "sig-0-ok"}
        old = adapter("anthropic", server, model="claude-3-5-haiku-custom")
        complete(old, request(effort=effort))
        assert "thinking" not in server.posts()[2]["body"]
        assert "has no extended thinking" in old.notes(effort)[0]
    finally:
        server.stop()


def test_openai_reasoning_effort_only_where_the_model_takes_it():
    server = ModelServer("openai").start()
    try:
        server.turns = [{"text": "a"}, {"text": "b"}]
        reasoning = adapter("openai", server, model="o3-mini")
        complete(reasoning, request(effort="high"))
        plain = adapter("openai", server, model="gpt-4o")
        complete(plain, request(effort="high"))
        first, second = (p["body"] for p in server.posts())
        assert first["reasoning_effort"] == "high"
        assert first["max_completion_tokens"] == 1000 + 16384
        assert "reasoning_effort" not in second and second["max_completion_tokens"] == 1000
        assert reasoning.notes("high") == ["thinking_effort high: reasoning_effort high"]
        assert "does not take reasoning_effort" in plain.notes("high")[0]
    finally:
        server.stop()


def test_compatible_servers_get_max_tokens_and_no_openai_only_settings():
    server = ModelServer("openai", api_key=None).start()
    try:
        server.turns = [{"text": "hi"}]
        made = adapter_for("openai_compatible", model="o3-like", base_url=server.base_url,
                           api_key=None)
        made.policy = FAST
        complete(made, request(effort="high"))
        body = server.posts()[0]["body"]
        assert body["max_tokens"] == 1000 and "reasoning_effort" not in body
        assert "max_completion_tokens" not in body
        assert "ignored" in made.notes("high")[0]
    finally:
        server.stop()


def test_429_waits_the_retry_after_then_succeeds(kind, server):
    server.turns = [{"status": 429, "error_type": "rate_limit_error",
                     "headers": {"retry-after": "0.3"}},
                    {"text": "Finally."}]
    started = time.monotonic()
    reply, _ = complete(adapter(kind, server))
    assert reply.text == "Finally." and len(server.posts()) == 2
    assert time.monotonic() - started >= 0.3  # the provider's wait, not our short backoff


def test_a_retry_after_beyond_the_maximum_fails_at_once(kind, server):
    server.turns = [{"status": 429, "error_type": "rate_limit_error",
                     "headers": {"retry-after": "3600"}}, {"text": "never"}]
    with pytest.raises(ProviderFailure) as raised:
        complete(adapter(kind, server))
    assert raised.value.code == "provider_rate_limited"
    assert "3600" in raised.value.message and len(server.posts()) == 1


def test_overload_is_retried_with_backoff_then_given_up(kind, server):
    server.turns = [{"status": 529 if kind == "anthropic" else 503,
                     "error_type": "overloaded_error"}] * 4
    with pytest.raises(ProviderFailure) as raised:
        complete(adapter(kind, server))
    assert raised.value.code == "provider_overloaded"
    assert "gave up after 4 attempts" in raised.value.message
    assert len(server.posts()) == 4  # 1 + FAST.retries: the SDK adds none of its own


def test_bad_requests_are_not_retried(kind, server):
    server.turns = [{"status": 400, "error_type": "invalid_request_error",
                     "message": "messages: field required"}, {"text": "never"}]
    with pytest.raises(ProviderFailure) as raised:
        complete(adapter(kind, server))
    assert raised.value.code == "provider_bad_request"
    assert "messages: field required" in raised.value.message
    assert len(server.posts()) == 1


def test_a_wrong_key_fails_without_showing_it(kind, server):
    wrong = "sk-proj-WRONGkey1234567890abcdef"
    server.turns = [{"text": "never"}]
    with pytest.raises(ProviderFailure) as raised:
        complete(adapter(kind, server, key=wrong))
    assert raised.value.code == "provider_auth_failed" and raised.value.status == 401
    assert "cdef" not in raised.value.message and "WRONG" not in raised.value.message
    assert len(server.posts()) == 1


def test_out_of_quota_is_not_retried():
    server = ModelServer("openai").start()
    try:
        server.turns = [{"status": 429, "error_type": "insufficient_quota",
                         "message": "You exceeded your current quota"}]
        with pytest.raises(ProviderFailure) as raised:
            complete(adapter("openai", server))
        assert raised.value.code == "provider_quota_exhausted" and len(server.posts()) == 1
    finally:
        server.stop()


def test_a_stream_that_breaks_before_any_text_is_retried(kind, server):
    server.turns = [{"stream_error": "overloaded_error"}, {"text": "Second try."}]
    reply, streamed = complete(adapter(kind, server))
    assert reply.text == "Second try." and "".join(streamed) == "Second try."
    assert len(server.posts()) == 2


def test_a_stream_that_breaks_after_text_is_not_repeated(kind, server):
    server.turns = [{"text": "Half a rep", "stream_error": "overloaded_error"},
                    {"text": "never"}]
    streamed: list[str] = []
    with pytest.raises(ProviderFailure) as raised:
        adapter(kind, server).complete(request(), on_text=streamed.append,
                                       cancel=threading.Event())
    # Anthropic's error event carries a retryable type: not retried once text went out.
    # OpenAI's in-stream error has no status: not retryable in the first place.
    assert raised.value.code in ("provider_stream_interrupted", "provider_error")
    assert "".join(streamed) == "Half a rep" and len(server.posts()) == 1


def test_an_unreachable_provider_is_retried_then_reported(kind):
    server = ModelServer(KINDS[kind][0]).start()
    server.stop()  # nothing listens on its port any more
    with pytest.raises(ProviderFailure) as raised:
        complete(adapter(kind, server))
    assert raised.value.code == "provider_unreachable"
    assert "gave up after 4 attempts" in raised.value.message


def test_cancel_interrupts_the_backoff(kind, server):
    server.turns = [{"status": 503, "error_type": "overloaded_error",
                     "headers": {"retry-after": "30"}}, {"text": "never"}]
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        complete(adapter(kind, server, policy=Policy(retries=3, max_wait=60)), cancel=cancel)
    assert time.monotonic() - started < 5 and len(server.posts()) == 1


def test_cancel_interrupts_a_stalled_stream(kind, server):
    server.turns = [{"text": "one two three four five six", "chunks": 6, "stall": 30}]
    cancel = threading.Event()
    streamed: list[str] = []

    def on_text(text):
        streamed.append(text)
        cancel.set()  # cancel as soon as the reply has begun

    started = time.monotonic()
    with pytest.raises(Cancelled):
        adapter(kind, server).complete(request(), on_text=on_text, cancel=cancel)
    assert time.monotonic() - started < 5 and streamed


def test_connect_time_check_refuses_a_rebound_name(kind, server, monkeypatch):
    """Saved while it resolved to a public address; now the name resolves to the
    metadata address (refused whatever the setting), then to loopback while private
    networks are refused: no request ever reaches the server."""
    answers = {"models.example.com": ["169.254.169.254"]}
    monkeypatch.setattr(ssrf, "resolve", lambda host, port: answers.get(host, []))
    made = adapter_for(kind, model=KINDS[kind][1], api_key=server.api_key,
                       base_url=server.base_url.replace("127.0.0.1", "models.example.com"))
    made.policy = FAST
    with pytest.raises(ProviderFailure) as raised:
        complete(made)
    assert raised.value.code == "provider_address_refused"
    assert "metadata" in raised.value.message
    answers["models.example.com"] = ["127.0.0.1"]
    monkeypatch.setenv(ssrf.ALLOW_PRIVATE_SETTING, "false")
    with pytest.raises(ProviderFailure) as raised:
        complete(made)
    assert raised.value.code == "provider_address_refused" and "loopback" in raised.value.message
    assert server.requests == []
    monkeypatch.setenv(ssrf.ALLOW_PRIVATE_SETTING, "true")  # the operator allows it: it works
    server.turns = [{"text": "via the name"}]
    assert complete(made)[0].text == "via the name"


def test_the_guarded_client_ignores_proxy_settings(monkeypatch, kind, server):
    monkeypatch.setenv("HTTP_PROXY", "http://169.254.169.254:3128")
    monkeypatch.setenv("ALL_PROXY", "http://169.254.169.254:3128")
    with http_client(5) as client:
        assert client.get(f"http://127.0.0.1:{server.port}/v1/models",
                          headers={"x-api-key": server.api_key,
                                   "authorization": f"Bearer {server.api_key}"}
                          ).status_code == 200


def test_failures_name_a_documented_code():
    from evershell.providers.clients import FAILURE_CODES
    from evershell.tasks.schemas import TaskSchema
    described = TaskSchema().fields["failure_code"].metadata["description"]
    assert all(code in described for code in FAILURE_CODES)
    assert failure(ValueError("odd")).code == "provider_error"


def test_through_the_loop_a_cut_off_reply_is_continued_within_max_continuations(
        kind, server, run_loop):
    server.turns = [{"text": "First half, ", "stop": "max_tokens"},
                    {"text": "second half."}]
    done = run_loop(adapter(kind, server))
    assert (done.outcome.status, done.outcome.result) == ("succeeded",
                                                          "First half, second half.")
    assert done.outcome.model_calls == 2 and done.outcome.input_tokens == 200
    assert "cut off by the output limit" in json.dumps(server.posts()[1]["body"]["messages"])
    server.turns = [{"text": "Only a half", "stop": "max_tokens"}, {"text": "never"}]
    done = run_loop(adapter(kind, server), max_continuations=1)
    assert (done.outcome.status, done.outcome.failure_code) == (
        "failed", "max_continuations_reached")


def test_through_the_loop_a_provider_failure_is_the_tasks_failure_code(kind, server,
                                                                       run_loop):
    from evershell.secrets.redaction import Redactor
    server.turns = [{"status": 400, "error_type": "invalid_request_error",
                     "message": f"bad thing near {server.api_key}"}]
    done = run_loop(adapter(kind, server),
                    redactor=Redactor({"MODEL_API_KEY": [server.api_key]}))
    assert (done.outcome.status, done.outcome.failure_code) == ("failed",
                                                                "provider_bad_request")
    assert server.api_key not in done.outcome.failure_reason


def test_cancel_interrupts_the_wait_for_the_response(kind, server):
    server.turns = [{"delay_headers": 20, "text": "late"}]
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        complete(adapter(kind, server), cancel=cancel)
    assert time.monotonic() - started < 5


def test_a_key_that_cannot_be_a_header_is_not_quoted(kind, server):
    broken = "sk-ant-api03-FIRSTHALF\nSECONDHALF-9f8e7d"
    with pytest.raises(ProviderFailure) as raised:
        complete(adapter(kind, server, key=broken))
    assert raised.value.code == "provider_auth_failed" and not raised.value.retryable
    assert "FIRSTHALF" not in raised.value.message and "SECONDHALF" not in raised.value.message
    assert server.requests == []


@pytest.mark.parametrize("kind_", ["anthropic", "openai"])
def test_a_missing_key_fails_before_any_request(kind_):
    server = ModelServer(KINDS[kind_][0]).start()
    try:
        made = adapter_for(kind_, model=KINDS[kind_][1], base_url=server.base_url,
                           api_key=None)
        with pytest.raises(ProviderFailure) as raised:
            complete(made)
        assert raised.value.code == "provider_auth_failed" and server.requests == []
    finally:
        server.stop()


def test_a_thinking_block_cut_off_before_its_signature_is_not_replayed():
    server = ModelServer("anthropic").start()
    try:
        server.turns = [{"thinking": "half a thou", "unsigned": True}]
        reply, _ = complete(adapter("anthropic", server))
        assert (reply.stop_reason, reply.replay) == ("max_tokens", [])
    finally:
        server.stop()


def test_every_allowed_address_is_tried_in_the_resolvers_order(kind, server, monkeypatch):
    # 127.0.0.2 is loopback too, but nothing listens there on the server's port
    monkeypatch.setattr(ssrf, "resolve", lambda host, port: ["127.0.0.2", "127.0.0.1"])
    server.turns = [{"text": "second address"}]
    made = adapter_for(kind, model=KINDS[kind][1], api_key=server.api_key,
                       base_url=server.base_url.replace("127.0.0.1", "models.example.com"))
    made.policy = FAST
    assert complete(made)[0].text == "second address"
