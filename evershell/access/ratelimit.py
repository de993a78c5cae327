"""Per-org token bucket in Redis, updated atomically by one Lua script — the one Redis
round trip of an authenticated ``/v1`` request.

Tokens refill at ``RATE_LIMIT_PER_MINUTE / 60`` per second up to ``RATE_LIMIT_BURST``.
Redis time is used, so every web node agrees on the clock. The same script returns the
org's epoch (``access.epochs``: is a cached principal still true?) and records when an
API key was last used (``apikeys.services.flush_last_used`` writes it to the database
in batches), so neither costs a round trip of its own. The script is sent by its SHA
(``EVALSHA``; loaded once per Redis). If Redis is unreachable the request is let
through and the failure logged: the limiter protects the service, it must not take it
down.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import redis
from flask import current_app

from evershell.access.epochs import CURRENT_EPOCH_LUA
from evershell.access.epochs import key as epoch_key
from evershell.core.errors import ErrorCode, EvershellError
from evershell.extensions import get_script

log = logging.getLogger("evershell.ratelimit")

# KEYS: bucket, epoch, last-used hash; ARGV: rate per second, burst, API key id or "",
# the epoch the caller's principal was cached under ("" for one read from the database
# now; a key's use is recorded only when the principal is known to be current).
# Returns {allowed, tokens*1000, retry_ms, epoch}.
LAST_USED_KEY = "evershell:api-key-last-used"
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
""" + CURRENT_EPOCH_LUA.format(index=2) + """
if ARGV[3] ~= '' and (ARGV[4] == '' or ARGV[4] == epoch) then
  redis.call('HSET', KEYS[3], ARGV[3], now)
end
return {allowed, math.floor(tokens * 1000), retry_ms, epoch}
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


def take(org_id: str, api_key_id: str | None = None,
         cached_epoch: str = "") -> tuple[Verdict | None, int | None]:
    """Spend one token of ``org_id``'s bucket (and note ``api_key_id``'s use if its
    principal is current: read now, or cached under ``cached_epoch``): the verdict and
    the org's epoch, both None when Redis is unavailable."""
    config = current_app.config
    rate = config["RATE_LIMIT_PER_MINUTE"] / 60.0
    burst = config["RATE_LIMIT_BURST"]
    try:
        allowed, tokens_milli, retry_ms, epoch = get_script("ratelimit", _SCRIPT)(
            keys=[f"evershell:ratelimit:{org_id}", epoch_key(org_id), LAST_USED_KEY],
            args=[rate, burst, api_key_id or "", cached_epoch])
    except redis.RedisError as exc:
        log.error("rate limiter unavailable, request allowed: %s", exc)
        return None, None
    tokens = tokens_milli / 1000.0
    return Verdict(
        allowed=bool(allowed), limit=burst, remaining=int(tokens),
        retry_after=max(1, math.ceil(retry_ms / 1000)),
        reset=math.ceil((burst - tokens) / rate) if rate else 0), int(epoch)


def enforce(verdict: Verdict | None) -> Verdict | None:
    """429 ``rate_limited`` when ``verdict`` says so."""
    if verdict is not None and not verdict.allowed:
        raise EvershellError(ErrorCode.RATE_LIMITED,
                             "Too many requests for this organisation; retry later.", 429,
                             headers=verdict.headers())
    return verdict
