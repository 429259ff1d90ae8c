"""A short-lived memory of verified passwords, so Basic auth on every request stays fast.

argon2 takes tens of milliseconds by design; twine sends the password with each of hundreds of
uploads. Entries are keyed by an HMAC of user and password under a per-process random key (the
password itself is never stored) and remember the hash they were verified against, so a
password change takes effect at once.

Checks of the same pair that arrive together share one hash (uv sends dozens of requests at
once with the same credentials): the first computes it, the others wait for its answer.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_ENTRIES = 10000
# How long a check waits for the same check already running before it runs its own.
FLIGHT_WAIT = 30.0


class _Flight:
    """One running check of a user/password pair; ``result`` is None until it is known."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: bool | None = None


class CredentialCache:
    """``(user, password) -> pwhash`` for ``ttl`` seconds, bounded in size."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, tuple[str, float]] = OrderedDict()
        self._flights: dict[tuple[bytes, str], _Flight] = {}
        self._lock = threading.Lock()

    def _digest(self, username: str, password: str) -> bytes:
        message = username.encode() + b"\x00" + password.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def verified(self, username: str, password: str, pwhash: str) -> bool:
        """Whether this user/password pair was verified against ``pwhash`` recently."""
        if self.ttl <= 0:
            return False
        digest = self._digest(username, password)
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return False
            if entry[1] < time.monotonic() or entry[0] != pwhash:
                del self._entries[digest]
                return False
            return True

    def remember(self, username: str, password: str, pwhash: str) -> None:
        """Record a successful verification."""
        if self.ttl <= 0:
            return
        digest = self._digest(username, password)
        with self._lock:
            self._entries[digest] = (pwhash, time.monotonic() + self.ttl)
            self._entries.move_to_end(digest)
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)

    def verify(self, username: str, password: str, pwhash: str, check: Callable[[], bool]) -> bool:
        """Whether the pair matches ``pwhash``: remembered, or ``check()`` run once for all.

        Concurrent calls for the same pair wait for the first one's answer; if it failed with
        an exception, each runs ``check`` itself.
        """
        if self.verified(username, password, pwhash):
            return True
        key = (self._digest(username, password), pwhash)
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait(FLIGHT_WAIT)
            return check() if flight.result is None else flight.result
        try:
            result = flight.result = check()
            if result:
                self.remember(username, password, pwhash)
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()
        return result
