"""Limits on failed logins, per client address and per user name.

Every wrong password (or unknown user) takes a token from the bucket of the client's address
and from the bucket of the user name tried. A bucket holds ``burst`` tokens and refills
evenly over ``window`` seconds; while either bucket is empty, password checks for that client
or user are refused with 429 and ``Retry-After`` before any hash is computed. Login tokens are
checked before this (they are signed, so guessing them is hopeless): a user whose password is
under attack keeps working with ``devpi login``'s token.

The state lives in the process, in LRU maps of bounded size; a full bucket is forgotten.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from devpi_core.errors import TooManyRequests

if TYPE_CHECKING:
    from collections.abc import Callable

# Buckets kept per limit: about 100 bytes each, so a few MB at most.
MAX_KEYS = 20000


class FailureBuckets:
    """Token buckets of failures by key: ``burst`` at once, refilled over ``window`` seconds."""

    def __init__(
        self,
        burst: int,
        window: float,
        *,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.rate = burst / window if burst else 0.0
        self.max_keys = max_keys
        self.clock = clock
        # key -> (tokens left, when counted)
        self._buckets: OrderedDict[bytes, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _tokens(self, key: bytes, now: float) -> float:
        entry = self._buckets.get(key)
        if entry is None:
            return float(self.burst)
        tokens = min(float(self.burst), entry[0] + (now - entry[1]) * self.rate)
        if tokens >= self.burst:
            del self._buckets[key]  # full again: as if never seen
        return tokens

    def wait(self, key: bytes) -> float:
        """Seconds until ``key`` may fail again (0: it may now)."""
        if not self.burst:
            return 0.0
        with self._lock:
            tokens = self._tokens(key, self.clock())
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def fail(self, key: bytes) -> None:
        """Take one token from ``key``'s bucket."""
        if not self.burst:
            return
        with self._lock:
            now = self.clock()
            tokens = max(0.0, self._tokens(key, now) - 1)
            self._buckets[key] = (tokens, now)
            self._buckets.move_to_end(key)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)


def _key(text: str) -> bytes:
    # fixed-size keys: a user name of a megabyte must not cost a megabyte here
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class LoginThrottle:
    """Failed logins by client address and by user name."""

    def __init__(self, *, per_client: FailureBuckets, per_user: FailureBuckets) -> None:
        self.per_client = per_client
        self.per_user = per_user

    def check(self, client: str, username: str) -> None:
        """Raise 429 (with ``Retry-After``) while ``client`` or ``username`` may not try."""
        client_wait = self.per_client.wait(_key(client))
        user_wait = self.per_user.wait(_key(username))
        if client_wait <= 0 and user_wait <= 0:
            return
        who = "from this address" if client_wait >= user_wait else f"for user {username!r}"
        seconds = math.ceil(max(client_wait, user_wait))
        raise TooManyRequests(
            f"too many failed logins {who}; try again in {seconds} seconds",
            retry_after=seconds,
        )

    def failed(self, client: str, username: str) -> None:
        """Count a wrong password (or unknown user) for ``client`` and ``username``."""
        self.per_client.fail(_key(client))
        self.per_user.fail(_key(username))
