"""argon2id password hashes through passlib (the maintained ``libpass`` distribution).

Each argon2 hash takes about 100 ms of CPU on all its lanes and ``argon2_memory_cost`` of
memory (64 MiB by default): 32 wrong passwords sent at once pushed a public page from 1 ms to
1.4 s and the process to 767 MB. :class:`HashGate` bounds how many run at once and how many
wait; the rest are told to come back (503 with ``Retry-After``) instead of piling up.
"""

from __future__ import annotations

import os
import threading
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING

from passlib.context import CryptContext

from devpi_core.errors import ServiceUnavailable
from devpi_core.interfaces import PasswordHasher
from devpi_core.pwhashes import split_legacy, verify_legacy

if TYPE_CHECKING:
    from collections.abc import Iterator

# How long a hash waits for a free slot before it gives up (one hash takes ~0.1 s).
SLOT_WAIT = 10.0


def default_slots(parallelism: int) -> int:
    """Hashes at once that keep the usable CPUs busy: each one runs ``parallelism`` lanes."""
    counter = getattr(os, "process_cpu_count", None) or os.cpu_count
    return max(1, (counter() or 1) // parallelism)


class HashGate:
    """At most ``slots`` hashes at once; at most ``queue`` more wait, up to ``wait`` seconds."""

    def __init__(self, slots: int, queue: int, *, wait: float = SLOT_WAIT) -> None:
        self.limit = slots + queue
        self.wait = wait
        self._slots = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._inside = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot for one hash; 503 when the queue is full or the wait is too long."""
        with self._lock:
            if self._inside >= self.limit:
                raise ServiceUnavailable("too many password checks at once; try again",
                                         retry_after=1)
            self._inside += 1
        try:
            if not self._slots.acquire(timeout=self.wait):
                raise ServiceUnavailable("password checks are queued too long; try again",
                                         retry_after=1)
            try:
                yield
            finally:
                self._slots.release()
        finally:
            with self._lock:
                self._inside -= 1


class Argon2Hasher(PasswordHasher):
    """``$argon2id$...`` hashes; parameters from ``plugins.passwd``; ``gate`` bounds them."""

    def __init__(
        self, *, time_cost: int, memory_cost: int, parallelism: int, gate: HashGate | None = None
    ) -> None:
        self.context = CryptContext(
            schemes=["argon2"],
            argon2__type="ID",
            argon2__rounds=time_cost,
            argon2__memory_cost=memory_cost,
            argon2__parallelism=parallelism,
        )
        self.gate = gate

    def _slot(self) -> AbstractContextManager[None]:
        return self.gate.slot() if self.gate is not None else nullcontext()

    def hash(self, password: str) -> str:
        with self._slot():
            return str(self.context.hash(password))

    def verify(self, password: str, pwhash: str) -> bool:
        if split_legacy(pwhash) is not None:  # imported from devpi-server <= 5; rehashed now
            return verify_legacy(password, pwhash)
        try:
            with self._slot():
                return bool(self.context.verify(password, pwhash))
        except (ValueError, TypeError):
            return False  # not an argon2 hash we can read

    def needs_update(self, pwhash: str) -> bool:
        if split_legacy(pwhash) is not None:
            return True
        try:
            return bool(self.context.needs_update(pwhash))
        except (ValueError, TypeError):
            return False
