"""The principals of recently seen credentials, per process.

Keyed by a hash of the credential (an API key's stored hash, a digest of a session JWT
or console cookie), never the credential itself. An entry holds the principal, the org
epoch it was stored under (``access.epochs``), and two deadlines: the credential's own
expiry (a key's ``expires_at``, a token's ``exp``) and a maximum age, which bounds how
stale an entry can be if an epoch bump was ever lost (Redis down at that moment).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from evershell.access.principal import Principal

MAX_ENTRIES = 10_000
MAX_AGE_SECONDS = 60.0


@dataclass(frozen=True)
class Entry:
    principal: Principal
    epoch: int | None  # None: not yet confirmed against an epoch read before the DB read
    deadline: float  # time.time() after which the entry is not used


class PrincipalCache:
    """A bounded LRU of :class:`Entry`; safe across threads and greenlets."""

    def __init__(self, max_entries: int = MAX_ENTRIES,
                 max_age: float = MAX_AGE_SECONDS) -> None:
        self.max_entries, self.max_age = max_entries, max_age
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.deadline <= time.time():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key: str, principal: Principal, epoch: int | None,
            expires_at: datetime | float | None = None) -> None:
        deadline = time.time() + self.max_age
        if isinstance(expires_at, datetime):
            expires_at = expires_at.timestamp()
        if expires_at is not None:
            deadline = min(deadline, expires_at)
        with self._lock:
            self._entries[key] = Entry(principal, epoch, deadline)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def drop(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


cache = PrincipalCache()
