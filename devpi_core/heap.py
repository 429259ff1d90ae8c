"""The server's memory outside Python's objects: glibc's malloc, tuned at start and trimmed
when the server falls quiet.

glibc keeps memory a program frees for its next allocations. Freed blocks at the top of a heap
go back to the system past ``M_TRIM_THRESHOLD``, but freed blocks below live ones stay resident
for good. A burst of cold mirror work (dozens of pages parsed and rendered at once, files
streamed by dozens of threads) leaves many such holes: ``malloc_trim(0)`` hands their pages
back (``madvise``), 14-17 MiB after uv's cold lock, in about 1.5 ms. :class:`IdleTrim` does that
once the server has been quiet for a few seconds after serving requests. Without glibc both are
no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 1024 * 1024


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def settle_garbage_collector() -> None:
    """Leave what start-up built out of later collections (``gc.freeze``).

    The app, its plugins and their imports are some hundred thousand objects that live as
    long as the process; without this every full collection walks them all again, and a cold
    mirror page of thousands of files triggers several: about a tenth of its CPU time.
    """
    gc.collect()
    gc.freeze()


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Keep glibc from hoarding freed memory: few arenas, large blocks always mapped.

    Every thread that moves large buffers (file transfers, big pages) otherwise keeps a few MB
    of freed memory in its own arena: with 16 workers and the mirror's fill threads that was
    about 100 MB more resident memory for the same work, with no throughput gained. glibc also
    raises its mmap threshold after the first large free, after which multi-megabyte pages and
    upstream bodies are carved from the heap and stay resident once freed; a fixed threshold
    keeps them in their own mappings, returned to the system when freed.
    """
    libc = _libc()
    if libc is None:
        log.debug("mallopt is not available (not glibc): leaving malloc alone")
        return
    libc.mallopt(M_ARENA_MAX, arenas)  # must run before the threads start
    libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    libc.mallopt(M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD)


def malloc_trim() -> Callable[[], object] | None:
    """``malloc_trim(0)`` of this process's C library, or None without glibc."""
    libc = _libc()
    return None if libc is None else lambda: libc.malloc_trim(0)


class IdleTrim:
    """Trims the heap once per quiet spell that follows activity.

    :meth:`tick` is called at a steady interval (the server's maintenance, every second) with
    a count that grows with activity (bytes of requests received) and whether requests are
    being worked on. After ``quiet_ticks`` ticks without either, ``trim`` runs once; then not
    again until there was new activity, so an idle server does nothing.
    """

    def __init__(self, trim: Callable[[], object] | None, quiet_ticks: int = 2) -> None:
        self.trim = trim
        self.quiet_ticks = quiet_ticks
        self.seen = 0
        self.quiet = 0
        self.trimmed_at = 0

    def tick(self, activity: int, *, busy: bool) -> bool:
        """Whether this tick trimmed."""
        if busy or activity != self.seen:
            self.seen, self.quiet = activity, 0
            return False
        self.quiet += 1
        if self.trim is None or self.quiet < self.quiet_ticks or self.trimmed_at == activity:
            return False
        self.trimmed_at = activity
        self.trim()
        return True
