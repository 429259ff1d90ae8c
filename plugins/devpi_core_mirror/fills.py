"""First downloads of mirrored files: one upstream transfer per file, however many clients ask.

A :class:`Fill` runs in its own thread: it streams the upstream body into a temp file while
hashing it, checks size and hashes, and only then hands the file to the blob store and records
the reference. Clients never read the upstream connection: each one tails the growing temp
file, so a client that disconnects does not disturb the fill, and late joiners start from byte
zero. Small files (``verify_before_send``) are held back until they are verified, so a bad hash
is a clean 502; larger ones stream as they arrive, all but their last byte, which is sent once
size and hashes check out: a client sees the transfer break off if they do not, and never holds
a complete file with the wrong hash.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from devpi_core.blobs import CHUNK, BlobIngest, HashMismatch
from devpi_core.errors import DevpiError, UpstreamUnavailable
from devpi_core.indextypes import FileStream

if TYPE_CHECKING:
    from devpi_core.interfaces import BlobStore, MirrorSource
    from devpi_core_mirror.metrics import Counters

log = logging.getLogger(__name__)
CONNECTING, STREAMING, VERIFIED, DONE, FAILED = (
    "connecting",
    "streaming",
    "verified",
    "done",
    "failed",
)
Committer = Callable[[str], None]


@dataclass(frozen=True)
class FileJob:
    """What to fetch and what it must turn out to be."""

    key: str
    url: str
    filename: str
    hashes: Mapping[str, str] = field(default_factory=dict)
    size: int | None = None


@dataclass(frozen=True)
class FillEnv:
    """Where fills read from and write to, and what they report to."""

    source: MirrorSource
    blobs: BlobStore
    tmpdir: str
    counters: Counters
    stop: threading.Event


class Fill:
    """One upstream download; see the module docstring. ``commit(sha256)`` records the stored
    blob in the metadata store."""

    def __init__(self, job: FileJob, env: FillEnv, commit: Committer) -> None:
        self.job = job
        self.source = env.source
        self.blobs = env.blobs
        self.tmpdir = env.tmpdir
        self.commit = commit
        self.counters = env.counters
        self.stop = env.stop
        self.cond = threading.Condition()
        self.state = CONNECTING
        self.error: DevpiError | None = None
        self.written = 0
        self.size: int | None = job.size
        self.path = ""
        self.sha256: str | None = None
        self.content_type: str | None = None
        self.last_modified: float | None = None

    # -- the download (own thread) ---------------------------------------------------------
    def run(self) -> None:
        """Fetch, verify, commit; every outcome ends in ``done`` or ``failed``."""
        try:
            self._download()
        except Exception as exc:  # noqa: BLE001 - a bug or a disk problem must release the waiters
            self._finish(FAILED, self._as_error(exc))

    def _as_error(self, exc: Exception) -> DevpiError:
        if isinstance(exc, DevpiError):
            return exc
        if self.error is None:  # log once, not again when run() sees it
            log.error("caching %s failed", self.job.url)
        return self.error or UpstreamUnavailable(f"caching {self.job.filename} failed: {exc}")

    def _download(self) -> None:
        self.counters.add("upstream_file_requests")
        stream = self.source.open_file(self.job.url)
        try:
            with BlobIngest(self.blobs, self.tmpdir) as ingest:
                for name in self.job.hashes:
                    ingest.also_hash(name)
                with self.cond:
                    self.path = ingest.path
                    self.size = stream.size if stream.size is not None else self.job.size
                    self.content_type, self.last_modified = (
                        stream.content_type,
                        stream.last_modified,
                    )
                    self.state = STREAMING
                    self.cond.notify_all()
                try:
                    self._copy(stream.chunks, ingest)
                    self._verify(ingest, stream.size)
                except Exception as exc:
                    # announced before the temp file goes away with the ingest
                    self._finish(FAILED, self._as_error(exc))
                    raise
                self.sha256 = ingest.commit()
        finally:
            stream.close()
        self.commit(self.sha256)
        self.counters.add("files_cached")
        self.counters.add("bytes_cached", self.written)
        self._finish(DONE, None)

    def _copy(self, chunks: Iterator[bytes], ingest: BlobIngest) -> None:
        for chunk in chunks:
            if self.stop.is_set():
                raise UpstreamUnavailable("the server is shutting down")
            ingest.write(chunk)
            ingest.flush()
            with self.cond:
                self.written += len(chunk)
                self.cond.notify_all()

    def _verify(self, ingest: BlobIngest, announced: int | None) -> None:
        try:
            ingest.check(size=self.job.size)
            ingest.check(size=announced, hashes=dict(self.job.hashes))
        except HashMismatch as exc:
            self.counters.add("upstream_errors")
            log.warning("upstream sent bad content for %s: %s", self.job.url, exc.message)
            raise UpstreamUnavailable(
                f"upstream sent bad content for {self.job.filename} "
                f"({exc.message}); nothing was cached"
            ) from None
        with self.cond:
            self.state = VERIFIED
            self.cond.notify_all()

    def _finish(self, state: str, error: DevpiError | None) -> None:
        with self.cond:
            self.state = state
            self.error = error
            self.cond.notify_all()

    # -- clients ---------------------------------------------------------------------------
    def wait(self, states: tuple[str, ...], timeout: float) -> str:
        """Wait until the fill reaches one of ``states``, fails, or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.state not in (*states, FAILED, DONE):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.cond.wait(remaining)
            return self.state

    def reader(
        self, open_blob: Callable[[str], BinaryIO], idle_timeout: float, *, verified: bool = False
    ) -> FileStream:
        """A stream of the whole file for one client (raises if the fill failed).

        With ``verified`` nothing is returned before the content passed its checks.
        """
        # past STREAMING the temp file is being handed to the blob store: wait for DONE then
        self.wait((STREAMING,), idle_timeout)
        with self.cond:
            state, error = self.state, self.error
            # opened under the lock: the temp file is only moved or removed after the state
            # left STREAMING (a failure is announced before the temp file is deleted)
            handle: BinaryIO | None = (
                open(self.path, "rb") if state == STREAMING else None  # noqa: SIM115
            )
        if handle is None and state == VERIFIED:
            # it went past STREAMING between the wait and the lock: the blob is being stored
            state = self.wait((DONE,), idle_timeout)
            error = self.error
        if verified and handle is not None:
            state = self.wait((VERIFIED,), idle_timeout * 4)
            error = self.error
            if state not in (VERIFIED, DONE):
                handle.close()
                raise error or UpstreamUnavailable(
                    f"upstream is too slow sending {self.job.filename}", status=504
                )
        if state == FAILED:
            assert error is not None
            raise error
        if handle is None:
            if state == CONNECTING:
                raise UpstreamUnavailable(
                    f"upstream did not start sending {self.job.filename} in time", status=504
                )
            if self.sha256 is None or state != DONE:
                raise UpstreamUnavailable(f"{self.job.filename} is still being stored; retry")
            handle = open_blob(self.sha256)
        return FileStream(
            self._tail(handle, idle_timeout),
            self.size,
            self.content_type,
            self.last_modified,
            close=handle.close,
        )

    def _sendable(self) -> int:
        """How much of the temp file clients may have (called under ``cond``): until the
        content is verified the last byte written is held back, so no client ever holds a
        complete file with the wrong hash (a failed check breaks the transfer off before it)."""
        if self.state in (STREAMING, CONNECTING):
            return max(0, self.written - 1)
        return self.written

    def _tail(self, handle: BinaryIO, idle_timeout: float) -> Iterator[bytes]:
        position = 0
        try:
            while True:
                with self.cond:
                    if self._sendable() <= position and self.state in (STREAMING, CONNECTING):
                        self.cond.wait(idle_timeout)
                    available, state, error = self._sendable(), self.state, self.error
                if state == FAILED and error is not None:
                    raise error  # the client sees the transfer break off; nothing was cached
                if state == DONE and available <= position:
                    chunk = handle.read(CHUNK)  # committed: read whatever is left
                    if not chunk:
                        return
                    position += len(chunk)
                    yield chunk
                    continue
                if available > position:
                    chunk = handle.read(min(CHUNK, available - position))
                    position += len(chunk)
                    yield chunk
                elif state == VERIFIED and available <= position:
                    return
        finally:
            handle.close()


class Fills:
    """The fills under way in one process, by file key."""

    def __init__(self) -> None:
        self._active: dict[str, Fill] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self.stop = threading.Event()

    def get(
        self, job: FileJob, make: Callable[[FileJob], Fill], stored: Callable[[], bool]
    ) -> Fill | None:
        """The fill for ``job.key``, started if none is under way; None if ``stored()`` says
        the content arrived meanwhile (a fill that just finished)."""
        with self._lock:
            fill = self._active.get(job.key)
            if fill is not None and fill.state != FAILED:
                return fill  # a DONE fill's readers read the committed blob
            # A fill leaves _active only after its blob is stored, so a request that found no
            # blob before, and no fill now, must look again before fetching a second time.
            if stored():
                return None
            fill = make(job)
            self._active[job.key] = fill
            thread = threading.Thread(
                target=self._run, args=(fill,), name=f"fill-{job.filename}", daemon=True
            )
            self._threads[job.key] = thread
        thread.start()
        return fill

    def _run(self, fill: Fill) -> None:
        try:
            fill.run()
        finally:
            with self._lock:
                if self._active.get(fill.job.key) is fill:
                    del self._active[fill.job.key]
                    self._threads.pop(fill.job.key, None)

    def running(self) -> int:
        """How many fills are under way."""
        return len(self._active)

    def shutdown(self, timeout: float = 10) -> None:
        """Make running fills stop at their next chunk, and wait for them (before the stores
        close under them)."""
        self.stop.set()
        with self._lock:
            threads = list(self._threads.values())
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
