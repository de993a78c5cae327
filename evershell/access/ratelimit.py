"""Per-org token bucket in Redis, updated atomically by one Lua script.

Tokens refill at ``RATE_LIMIT_PER_MINUTE / 60`` per second up to ``RATE_LIMIT_BURST``.
Redis time is used, so every web node agrees on the clock. If Redis is unreachable the
request is let through and the failure logged: the limiter protects the service, it must
not take it down.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import redis
from flask import current_app

from evershell.core.errors import ErrorCode, EvershellError
from evershell.extensions import get_redis

log = logging.getLogger("evershell.ratelimit")

# KEYS[1] bucket; ARGV: rate per second, burst. Returns {allowed, tokens*1000, retry_ms}.
_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (math.max(0, now - ts) / 1000.0) * rate)
local allowed = 0
local retry_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry_ms = math.ceil((1 - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, math.floor(tokens * 1000), retry_ms}
"""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int  # seconds
    reset: int  # seconds until the bucket is full again

    def headers(self) -> dict[str, str]:
        headers = {"RateLimit-Limit": str(self.limit),
                   "RateLimit-Remaining": str(self.remaining),
                   "RateLimit-Reset": str(self.reset)}
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


def take(org_id: str) -> Verdict | None:
    """Spend one token of ``org_id``'s bucket; None when the limiter is unavailable."""
    config = current_app.config
    rate = config["RATE_LIMIT_PER_MINUTE"] / 60.0
    burst = config["RATE_LIMIT_BURST"]
    try:
        client = get_redis()
        allowed, tokens_milli, retry_ms = client.eval(
            _SCRIPT, 1, f"evershell:ratelimit:{org_id}", rate, burst)
    except redis.RedisError as exc:
        log.error("rate limiter unavailable, request allowed: %s", exc)
        return None
    tokens = tokens_milli / 1000.0
    return Verdict(
        allowed=bool(allowed), limit=burst, remaining=int(tokens),
        retry_after=max(1, math.ceil(retry_ms / 1000)),
        reset=math.ceil((burst - tokens) / rate) if rate else 0)


def enforce(org_id: str) -> Verdict | None:
    verdict = take(org_id)
    if verdict is not None and not verdict.allowed:
        raise EvershellError(ErrorCode.RATE_LIMITED,
                             "Too many requests for this organisation; retry later.", 429,
                             headers=verdict.headers())
    return verdict
