"""The waitress server devpi-core runs: request deadlines and room for new connections.

waitress closes a connection only after ``channel_timeout`` seconds *without a byte*, so a
client that sends one byte every few seconds keeps its connection, and enough of them keep the
whole server, forever. Two additions close that gap:

- every request gets a deadline from its first byte: ``server.request_timeout`` seconds for
  the request line, headers and body, plus one second for every ``server.request_min_rate``
  bytes received, so a slow but real upload keeps going while a trickle is cut off;
- when open connections near ``server.connection_limit``, the connections that have been
  silent longest and are not being answered are closed to make room (as nginx reuses idle
  keep-alive connections), so idle sockets cannot lock new clients out.

Once the server falls quiet after requests, the heap is trimmed (:mod:`devpi_core.heap`).

Files on disk (a ``wsgi.file_wrapper`` over a real file, as stored release files are served)
go out with ``os.sendfile``: waitress reads every block into Python twice (once to send it,
once more to skip past it); the kernel copies it once, with no Python per block.

These hook into waitress 3's channel and server classes (``received``, ``_flush_some``,
``maintenance``, ``readable``, ``active_channels``); ``tests/security/test_security_connections.py``
and ``tests/unit/test_sendfile.py`` pin that behaviour.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import stat
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from waitress.adjustments import Adjustments
from waitress.buffers import ReadOnlyFileBasedBuffer
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from devpi_core.errors import StartupError
from devpi_core.heap import IdleTrim, malloc_trim

if TYPE_CHECKING:
    from collections.abc import Iterable

log = logging.getLogger(__name__)
# File descriptors besides the connections: the database, blobs being read, upstream sockets.
SPARE_FILES = 256
SENDFILE = hasattr(os, "sendfile")
# as waitress's dispatcher: the peer is gone, the connection closes
_DISCONNECTED = frozenset(
    {errno.ECONNRESET, errno.ENOTCONN, errno.ESHUTDOWN, errno.ECONNABORTED, errno.EPIPE,
     errno.EBADF}
)


def file_descriptor(outbuf: object) -> int | None:
    """The descriptor of a regular file behind a ``wsgi.file_wrapper``, else None."""
    if not SENDFILE or not isinstance(outbuf, ReadOnlyFileBasedBuffer):
        return None
    try:
        fd = outbuf.file.fileno()
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except (AttributeError, OSError, ValueError):  # no fileno (BytesIO), closed
        return None


@dataclass(frozen=True)
class RequestDeadline:
    """How long a request may take to arrive: ``seconds`` plus one second per ``min_rate`` bytes."""

    seconds: float
    min_rate: int

    def allowance(self, received: int) -> float:
        """Seconds a request may take to arrive once ``received`` bytes of it have come in."""
        return self.seconds + (received / self.min_rate if self.min_rate else 0.0)


class DeadlineChannel(HTTPChannel):  # type: ignore[misc]  # waitress has no type hints
    """An HTTP connection that knows when its current request started to arrive."""

    request_started: float | None = None
    request_bytes = 0

    def received(self, data: bytes) -> bool:
        """Parse ``data`` as waitress does, and note when a new request began."""
        before = self.request
        self.server.received += len(data)
        result = bool(super().received(data))
        if self.request is None:
            self.request_started = None  # every request in data is complete
        elif self.request is not before:
            self.request_started, self.request_bytes = time.monotonic(), len(data)
        else:
            self.request_bytes += len(data)
        return result

    def _flush_some(self, do_close: bool = True) -> bool:
        """Send what is queued (waitress's loop), a file on disk with ``os.sendfile``."""
        sent = 0
        while True:
            outbuf = self.outbufs[0]
            outbuflen = outbuf.__len__()  # as waitress: no OverflowError on 32-bit Pythons
            fd = file_descriptor(outbuf) if outbuflen > 0 else None
            while outbuflen > 0:
                if fd is not None:
                    num_sent = self._sendfile(outbuf, fd, outbuflen, do_close)
                else:
                    num_sent = self.send(outbuf.get(self.sendbuf_len), do_close=do_close)
                    if num_sent:
                        outbuf.skip(num_sent, True)
                if not num_sent:  # the socket takes no more for now (or is gone)
                    return self._sent(sent)
                outbuflen -= num_sent
                sent += num_sent
                self.total_outbufs_len -= num_sent
            if len(self.outbufs) == 1:  # the last outbuf stays: it is the writable one
                return self._sent(sent)
            done = self.outbufs.pop(0)
            try:
                done.close()
            except Exception:
                self.logger.exception("Unexpected error when closing an outbuf")

    def _sent(self, sent: int) -> bool:
        if sent:
            self.last_activity = time.time()
        return bool(sent)

    def _sendfile(self, outbuf: Any, fd: int, length: int, do_close: bool) -> int:
        """Send up to ``length`` bytes of the file from its position; what was sent."""
        offset = outbuf.file.tell()
        try:
            num_sent = os.sendfile(self.socket.fileno(), fd, offset, length)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                return 0
            if exc.errno in _DISCONNECTED:
                if do_close:
                    self.handle_close()
                return 0
            raise
        if num_sent:
            outbuf.file.seek(offset + num_sent)
            outbuf.remain -= num_sent
        return num_sent

    def overdue(self, now: float, deadline: RequestDeadline) -> bool:
        """Whether the request being received has missed its deadline."""
        if self.request_started is None:
            return False
        if self.requests:
            # a pipelined request waits while an earlier one is answered: its clock starts over
            self.request_started = now
            return False
        return now - self.request_started > deadline.allowance(self.request_bytes)


class GuardedServer(TcpWSGIServer):  # type: ignore[misc]  # waitress has no type hints
    """waitress's TCP server with request deadlines and eviction of idle connections."""

    channel_class = DeadlineChannel

    received = 0  # bytes of requests, on the loop's thread: activity for the idle trim

    def __init__(self, application: Any, *, deadline: RequestDeadline, **kw: Any) -> None:
        self.deadline = deadline
        self.idle_trim = IdleTrim(malloc_trim())
        super().__init__(application, **kw)

    def _channels(self) -> list[DeadlineChannel]:
        return [c for c in list(self.active_channels.values()) if isinstance(c, DeadlineChannel)]

    def maintenance(self, now: float) -> None:
        """Close idle connections (waitress) and those whose request missed its deadline;
        trim the heap once quiet."""
        super().maintenance(now)
        clock = time.monotonic()
        for channel in self._channels():
            if not channel.will_close and channel.overdue(clock, self.deadline):
                log.info("closing the connection from %s: its request did not arrive within "
                         "the deadline (server.request_timeout)", channel.addr[0])
                channel.will_close = True
        tasks = self.task_dispatcher
        self.idle_trim.tick(self.received, busy=bool(tasks.active_count or tasks.queue))

    def readable(self) -> bool:
        """Make room before the connection limit is reached, then accept as waitress does."""
        headroom = max(1, self.adj.connection_limit // 20)
        if self.accepting and len(self._map) >= self.adj.connection_limit - headroom:
            self._make_room(headroom)
        return bool(super().readable())

    def _make_room(self, wanted: int) -> None:
        channels = self._channels()
        closing = sum(1 for c in channels if c.will_close or c.close_when_flushed)
        victims = evictable(channels)[: max(0, wanted - closing)]
        for channel in victims:
            channel.will_close = True
        if victims:
            log.info("%d connections open: closed the %d that were silent longest",
                     len(channels), len(victims))


def evictable(channels: Iterable[DeadlineChannel]) -> list[DeadlineChannel]:
    """Connections no response is being written to, longest silent first."""
    idle = [
        c for c in channels
        if not (c.requests or c.will_close or c.close_when_flushed or c.total_outbufs_len)
    ]
    return sorted(idle, key=lambda c: float(c.last_activity))


def create_server(application: Any, *, deadline: RequestDeadline, **kw: Any) -> GuardedServer:
    """A listening :class:`GuardedServer`; ``kw`` are waitress adjustments (host, port, ...).

    Like ``waitress.create_server`` for one address; polls instead of ``select()`` (which
    fails beyond 1024 file descriptors) and raises the open-file limit to fit the connections.
    """
    adj = Adjustments(asyncore_use_poll=True, **kw)
    if len(adj.listen) != 1:
        addresses = ", ".join(str(info[3][0]) for info in adj.listen)
        raise StartupError(f"{kw.get('host')} stands for several addresses ({addresses}); "
                           "give one of them as the host")
    raise_file_limit(adj.connection_limit + SPARE_FILES)
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    return GuardedServer(application, deadline=deadline, map={}, dispatcher=dispatcher, adj=adj,
                         sockinfo=adj.listen[0])


def raise_file_limit(wanted: int) -> None:
    """Raise the soft limit on open files to ``wanted`` (as far as the hard limit allows)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        log.warning("the open-file limit (%d) is below server.connection_limit plus %d spare; "
                    "raise it (LimitNOFILE= in the systemd unit)", target, SPARE_FILES)
