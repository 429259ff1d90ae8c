"""First downloads of mirrored files: one upstream transfer per file, however many clients ask.

A :class:`Fill` runs in its own thread: it streams the upstream body into a temp file while
hashing it, checks size and hashes, and only then hands the file to the blob store and records
the reference. Clients never read the upstream connection: each one tails the growing temp
file, so a client that disconnects does not disturb the fill, and late joiners start from byte
zero. Small files (``verify_before_send``) are held back until they are verified, so a bad hash
is a clean 502; larger ones stream as they arrive, all but their last byte, which is sent once
size and hashes check out: a client sees the transfer break off if they do not, and never holds
a complete file with the wrong hash. Clients that come once the content is verified read it
through the fill's own handle on the temp file, while the blob store takes it and the reference
is committed: no waiting for those, and nothing read back from the blob store.

Processes sharing a store (nodes of a cluster, several servers on one serverdir) coordinate
through a :class:`FillLease`: the fill that takes the lease ``fill:<index>:<file>`` downloads
and stores the file, renewing the lease while it runs. A fill that finds the lease held
*follows*: it polls the store until the holder committed, then serves the stored blob. Past
``follow_wait`` it *passes through*: it streams the upstream body to its clients without
storing it first (same checks, same held-back last byte), then stores what it verified unless
someone stored the file meanwhile: a holder that was killed must not leave the file uncached
until the next request after its lease expired, and a second put of the same content is
harmless (blobs are content-addressed, an equal commit is a no-op). A follower that finds the
lease expired takes it over and fills from byte zero.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from devpi_core.blobs import CHUNK, BlobIngest, HashMismatch
from devpi_core.errors import DevpiError, UpstreamUnavailable
from devpi_core.indextypes import FileStream

if TYPE_CHECKING:
    from devpi_core.interfaces import BlobStore, MirrorSource
    from devpi_core_mirror.leases import Lease
    from devpi_core_mirror.metrics import Counters

log = logging.getLogger(__name__)
FOLLOWING, CONNECTING, STREAMING, VERIFIED, DONE, FAILED = (
    "following",
    "connecting",
    "streaming",
    "verified",
    "done",
    "failed",
)
Committer = Callable[[str], None]
FOLLOW_POLL = 0.05  # seconds between looks at the store while another process fills
LEASE_RETRY = 0.25  # seconds between a follower's tries to take an expired lease over


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


@dataclass(frozen=True)
class FillLease:
    """How a fill coordinates with the other processes sharing the store: the ``lease`` of its
    file, ``stored()`` (the sha256 of the file once some process committed it, else None) and
    how long a follower waits for the holder's commit before it passes the upstream through."""

    lease: Lease
    stored: Callable[[], str | None]
    follow_wait: float


class Fill:
    """One upstream download; see the module docstring. ``commit(sha256)`` records the stored
    blob in the metadata store; without ``shared`` the fill downloads without a lease."""

    def __init__(
        self, job: FileJob, env: FillEnv, commit: Committer, shared: FillLease | None = None
    ) -> None:
        self.job = job
        self.shared = shared
        self.passthrough = False
        self._spare: BinaryIO | None = None
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
            if self.shared is None:
                self._download()
                self._stored()
            else:
                self._lead_or_follow(self.shared)
        except Exception as exc:  # noqa: BLE001 - a bug or a disk problem must release the waiters
            self._finish(FAILED, self._as_error(exc))

    def _as_error(self, exc: Exception) -> DevpiError:
        if isinstance(exc, DevpiError):
            return exc
        if self.error is None:  # log once, not again when run() sees it
            log.error("caching %s failed", self.job.url)
        return self.error or UpstreamUnavailable(f"caching {self.job.filename} failed: {exc}")

    def _lead_or_follow(self, shared: FillLease) -> None:
        if shared.lease.acquire():
            self._lead(shared, "fills_led")
            return
        with self.cond:
            self.state = FOLLOWING
        now = time.monotonic()
        deadline, next_try = now + shared.follow_wait, now + LEASE_RETRY
        while time.monotonic() < deadline:
            if self.stop.wait(FOLLOW_POLL):
                raise UpstreamUnavailable("the server is shutting down")
            if self._found(shared):
                return
            if time.monotonic() < next_try:
                continue
            next_try = time.monotonic() + LEASE_RETRY
            if shared.lease.acquire():  # the holder died (or failed): take over from byte 0
                self._lead(shared, "fills_taken_over")
                return
        self.counters.add("fills_passed_through")
        self.passthrough = True
        self._download()
        if self.sha256 is not None:
            self._stored()

    def _lead(self, shared: FillLease, counter: str) -> None:
        """With the lease acquired: download and store unless the file is stored by now (a
        holder committed and released just before)."""
        with shared.lease.held():
            if self._found(shared):
                return
            self.counters.add(counter)
            self._download()
        self._stored()  # announced once the lease is free again

    def _found(self, shared: FillLease) -> bool:
        """Whether some process stored the file (then the fill is done: clients read it)."""
        sha256 = shared.stored()
        if sha256 is None:
            return False
        if self.state == FOLLOWING:
            self.counters.add("fills_followed")
        self.sha256 = sha256
        self._finish(DONE, None)
        return True

    def _keep(self, hold: contextlib.ExitStack) -> bool:
        """Whether a verified download is stored: always, except a pass-through that finds the
        file stored by someone else meanwhile. A pass-through that can take the lease by now
        (its holder died or gave up) holds it (in ``hold``) until the commit."""
        if not self.passthrough:
            return True
        assert self.shared is not None
        if self.shared.lease.acquire():
            hold.enter_context(self.shared.lease.held())
            self.counters.add("fills_taken_over")
        return self.shared.stored() is None

    def _download(self) -> None:
        self.counters.add("upstream_file_requests")
        stream = self.source.open_file(self.job.url)
        with contextlib.ExitStack() as hold:
            try:
                with BlobIngest(self.blobs, self.tmpdir) as ingest:
                    for name in self.job.hashes:
                        ingest.also_hash(name)
                    # Clients who come once the content is verified read this handle (the
                    # temp file is moved into the blob store or deleted meanwhile): reading
                    # the stored blob back would be a GET on an object store, and would wait
                    # for the commit. A pass-through's clients read it after the end too.
                    self._spare = open(ingest.path, "rb")  # noqa: SIM115
                    weakref.finalize(self, self._spare.close)
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
                    if self._keep(hold):
                        self.sha256 = ingest.commit()
            finally:
                stream.close()
            if self.sha256 is None:
                # a pass-through: its clients read the (deleted) temp file to the end
                self._finish(DONE, None)
                return
            self.commit(self.sha256)

    def _stored(self) -> None:
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
    def joinable(self) -> bool:
        """Whether a new client can still read the whole file from this fill (not after it
        failed)."""
        return self.state != FAILED

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
        self.wait((STREAMING, VERIFIED), idle_timeout)
        with self.cond:
            state, error = self.state, self.error
            # opened under the lock: the temp file is only moved or removed after the state
            # left STREAMING (a failure is announced before the temp file is deleted); past
            # it, the verified content is read from the fill's own handle
            handle: BinaryIO | _Positional | None = None
            if state == STREAMING:
                handle = open(self.path, "rb")  # noqa: SIM115
            elif state in (VERIFIED, DONE) and self._spare is not None:
                handle = _Positional(self._spare)
        if handle is None and state == VERIFIED:  # no handle of its own: read the stored blob
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
            if state in (CONNECTING, FOLLOWING):
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

    def _tail(self, handle: BinaryIO | _Positional, idle_timeout: float) -> Iterator[bytes]:
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
        self, job: FileJob, make: Callable[[FileJob], Fill], stored: Callable[[], bool] | None
    ) -> Fill | None:
        """The fill for ``job.key``, started if none is under way; None if ``stored()`` says
        the content arrived meanwhile (a fill that just finished). Without ``stored`` the fill
        looks itself (a leased fill does once it holds the lease)."""
        with self._lock:
            fill = self._active.get(job.key)
            if fill is not None and fill.joinable():
                return fill  # a DONE fill's readers read the committed blob
            # A fill leaves _active only after its blob is stored, so a request that found no
            # blob before, and no fill now, must look again before fetching a second time.
            if stored is not None and stored():
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


class _Positional:
    """A reader of its own on a shared handle (``os.pread``: the handle's offset is not used),
    for a temp file that was deleted while the handle stayed open."""

    def __init__(self, shared: BinaryIO) -> None:
        self.fd = shared.fileno()
        self.position = 0

    def read(self, size: int = CHUNK) -> bytes:
        chunk = os.pread(self.fd, size, self.position)
        self.position += len(chunk)
        return chunk

    def close(self) -> None:
        """The shared handle stays open (it closes with its fill)."""
