"""Work that need not delay an answer, run in order on one background thread.

The mirror uses two queues. Writes: a cold project page is answered from memory as soon as it is
parsed, and storing it (encoding a few megabytes of rows, the SQLite write and commit) runs
behind the answer while the installer reads it; whoever needs the store to hold every earlier
write (a delete, a listing, a test, the shutdown) calls :meth:`JobQueue.flush`, and what is
queued at shutdown still runs. Prefetches (see ``prefetch``): bounded, and dropped at shutdown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)


class JobQueue:
    """Jobs run in order on one thread, started with the first job.

    ``limit`` bounds the queue (further jobs are dropped); ``drop_on_close`` drops queued and
    later jobs at :meth:`close` instead of running them.
    """

    def __init__(self, name: str, *, limit: int | None = None, drop_on_close: bool = False) -> None:
        self.name = name
        self.limit = limit
        self.drop_on_close = drop_on_close
        self._jobs: deque[Callable[[], object]] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, job: Callable[[], object]) -> bool:
        """Queue ``job`` after every job before it; False if it was dropped (queue full, or
        closed with ``drop_on_close``). Once closed otherwise, it runs at once in the caller."""
        with self._cond:
            if not self._closed:
                if self.limit is not None and len(self._jobs) >= self.limit:
                    return False
                self._jobs.append(job)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                    self._thread.start()
                self._cond.notify_all()
                return True
        if self.drop_on_close:
            return False
        self._call(job)  # shutting down: nobody is left to run it later
        return True

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until every job submitted so far has run; False if ``timeout`` passed first."""
        if threading.current_thread() is self._thread:
            return True  # a job waiting for itself
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._jobs or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def pending(self) -> int:
        """Jobs submitted and not finished."""
        with self._cond:
            return len(self._jobs) + self._busy

    def close(self, timeout: float = 60.0) -> None:
        """Run (or drop) what is queued, then stop the thread."""
        with self._cond:
            self._closed = True
            if self.drop_on_close:
                self._jobs.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.error("%s: still running after %.0f s at shutdown", self.name, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closed:
                    self._cond.wait()
                if not self._jobs:
                    return
                job = self._jobs.popleft()
                self._busy = True
            try:
                self._call(job)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _call(self, job: Callable[[], object]) -> None:
        try:
            job()
        except Exception:  # one failed job must not stop the ones after it
            log.exception("%s: a background job failed", self.name)
