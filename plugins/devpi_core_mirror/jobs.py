"""Work that need not delay an answer, run in order on one background thread.

The mirror's store writes: a cold project page is answered from memory as soon as it is
parsed, and storing it (encoding a few megabytes of rows, the SQLite write and commit) runs
behind the answer while the installer reads it. Whoever needs the store to hold every earlier
write (a delete, a listing, a test) calls :meth:`JobQueue.flush`; what is queued at shutdown
still runs.
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
    """Jobs run in order on one thread, started with the first job."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: deque[Callable[[], object]] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, job: Callable[[], object]) -> None:
        """Run ``job`` after every job submitted before it (at once, here, once closed)."""
        with self._cond:
            if not self._closed:
                self._jobs.append(job)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                    self._thread.start()
                self._cond.notify_all()
                return
        self._call(job)  # shutting down: nobody is left to run it later

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until every job submitted so far has run; False if ``timeout`` passed first."""
        return self.wait_below(1, timeout)

    def wait_below(self, count: int, timeout: float = 60.0) -> bool:
        """Wait until fewer than ``count`` jobs are queued or running (backpressure for a
        producer whose jobs hold memory); False if ``timeout`` passed first."""
        if threading.current_thread() is self._thread:
            return True
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._jobs) + self._busy >= count:
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
        """Run what is queued, then stop the thread; later jobs run in the caller."""
        with self._cond:
            self._closed = True
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
