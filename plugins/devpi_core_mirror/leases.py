"""Leases on work only one of the processes sharing a store should do (a mirror fill, the
upstream name list): taken in the metadata store, kept alive by a heartbeat thread while the
work runs, released after it.

A lease is only a bandwidth optimisation: blobs are content-addressed and commits of an equal
value are no-ops, so a holder that lost its lease (hung, then woke up) and finishes late does
no harm. That is why a store error while taking a lease lets the work go ahead (as before there
were leases) instead of failing it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from devpi_core.interfaces import MetadataStore

log = logging.getLogger(__name__)


def holder_name() -> str:
    """A name for this process (and this server in it) as a lease holder: host, pid, random."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    """The lease ``name`` in ``store``, taken for ``holder`` for ``ttl`` seconds at a time."""

    def __init__(self, store: MetadataStore, name: str, holder: str, ttl: float) -> None:
        self.store = store
        self.name = name
        self.holder = holder
        self.ttl = ttl

    def acquire(self) -> bool:
        """Take the lease (free, expired, or already ours); False while another holds it."""
        try:
            return self.store.acquire_lease(self.name, self.holder, self.ttl)
        except Exception:  # noqa: BLE001 - see the module docstring: the work goes ahead
            log.warning("could not take the lease %s; going ahead without it", self.name)
            return True

    def release(self) -> None:
        """Give the lease up (it expires by itself if this fails)."""
        try:
            self.store.release_lease(self.name, self.holder)
        except Exception:  # noqa: BLE001 - it expires after ttl anyway
            log.warning("could not release the lease %s; it expires by itself", self.name)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Renew the (acquired) lease every quarter ``ttl`` while the block runs, release it
        after."""
        stop = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(stop,), name=f"lease-{self.name}", daemon=True
        )
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join()
            self.release()

    def _heartbeat(self, stop: threading.Event) -> None:
        while not stop.wait(self.ttl / 4):
            try:
                if not self.store.renew_lease(self.name, self.holder, self.ttl):
                    log.warning("lost the lease %s (another process took it over)", self.name)
                    return
            except Exception:  # noqa: BLE001 - try again at the next beat
                log.warning("could not renew the lease %s", self.name)
