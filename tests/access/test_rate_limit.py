"""The per-org token bucket: 429 rate_limited with Retry-After and RateLimit-* headers,
per org, refilling over time, atomic under concurrent requests."""

from __future__ import annotations

import threading

import pytest

from evershell.access import ratelimit
from tests.factories import bearer, make_api_key, make_member


@pytest.fixture
def tight_limit(app):
    saved = app.config["RATE_LIMIT_PER_MINUTE"], app.config["RATE_LIMIT_BURST"]
    app.config["RATE_LIMIT_PER_MINUTE"], app.config["RATE_LIMIT_BURST"] = 60, 3
    yield
    app.config["RATE_LIMIT_PER_MINUTE"], app.config["RATE_LIMIT_BURST"] = saved


def test_burst_then_429_with_retry_after(client, tight_limit):
    headers = bearer(make_api_key(make_member(role="owner")))
    statuses = [client.get("/v1/me", headers=headers) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert [r.headers["RateLimit-Remaining"] for r in statuses[:3]] == ["2", "1", "0"]
    refused = statuses[3]
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Limit"] == "3"


def test_buckets_are_per_org(client, tight_limit):
    first = bearer(make_api_key(make_member(role="owner")))
    second = bearer(make_api_key(make_member(role="owner")))
    for _ in range(3):
        client.get("/v1/me", headers=first)
    assert client.get("/v1/me", headers=first).status_code == 429
    assert client.get("/v1/me", headers=second).status_code == 200


def test_tokens_refill_with_time(app, tight_limit):
    with app.app_context():
        for _ in range(3):
            assert ratelimit.take("org_refill")[0].allowed
        assert not ratelimit.take("org_refill")[0].allowed
        from evershell.extensions import get_redis
        # Age the bucket by two seconds (60/min = 1 token per second).
        key = "evershell:ratelimit:org_refill"
        get_redis().hincrby(key, "ts", -2000)
        assert ratelimit.take("org_refill")[0].allowed


def test_concurrent_takes_never_overspend(app, tight_limit):
    """The Lua script is atomic: 20 threads racing for 3 tokens get exactly 3."""
    results = []

    def worker():
        with app.app_context():
            results.append(ratelimit.take("org_race")[0].allowed)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 3


def test_an_epoch_lost_with_redis_data_never_comes_back_as_an_old_number(app):
    """Epochs start from the clock: after Redis loses the key (a restart without
    persistence, an eviction), neither a request nor a bump yields a number a cache
    may still hold."""
    from evershell.access import epochs
    from evershell.extensions import get_redis
    with app.app_context():
        first = ratelimit.take("org_epoch")[1]
        assert first > 10**15 and ratelimit.take("org_epoch")[1] == first
        epochs.bump({"org_epoch"})
        bumped = ratelimit.take("org_epoch")[1]
        assert bumped == first + 1
        get_redis().delete(epochs.key("org_epoch"))
        epochs.bump({"org_epoch"})  # a bump on the lost key
        after = ratelimit.take("org_epoch")[1]
        assert after not in (first, bumped) and after > bumped
