"""The upstream project list of a mirror index: fetched lazily, stored compactly, streamed.

The list (hundreds of thousands of names) is never held in memory: it streams from the upstream
through a gzip writer into the blob store (one normalized name per line), and streams back out
when ``+simple/`` is served. Only a request for the list itself ever waits for the upstream;
an outdated list is refreshed in the background while the stored one is served.
"""

from __future__ import annotations

import gzip
import io
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, BinaryIO

from devpi_core.blobs import BlobIngest
from devpi_core.errors import DevpiError, UpstreamUnavailable
from devpi_core.model.blobrefs import add_ref, drop_ref
from devpi_core_mirror import layout
from devpi_core_mirror.cache import SingleFlight
from devpi_core_mirror.leases import Lease, holder_name
from devpi_core_mirror.part import IndexPart

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable, Iterator


log = logging.getLogger(__name__)
BATCH = 2000
LIST_POLL = 0.1  # seconds between looks at the store while another process fetches the list


class ProjectList(IndexPart):
    """Project names of one mirror index."""

    def _start(self) -> None:
        self._flight: SingleFlight[None] = SingleFlight()
        self._holder = holder_name()  # of the names:<index> lease
        self._background: threading.Thread | None = None
        self._closed = False
        # for search: the stored list decompressed ("\n" + one name per line), by its sha256
        self._searchable: tuple[str, bytes] | None = None
        self._searchable_lock = threading.Lock()

    @property
    def owner(self) -> str:
        """The blob reference owner of the stored list."""
        return f"{self.index}/+names"

    def _uses_upstream(self) -> bool:
        return not (
            self.env.offline or self.config.get("mirror_no_project_list") or self.source is None
        )

    def info(self) -> dict[str, Any] | None:
        """The stored list's record (None if none is stored)."""
        with self.env.store.read() as tx:
            value = tx.get(layout.names_key(self.index))
        return dict(value) if value else None

    def local_names(self) -> list[str]:
        """Projects this index has cached pages for."""
        self.writes.flush()  # pages fetched just now are still being stored
        start = len(layout.pages_prefix(self.index))
        with self.env.store.read() as tx:
            return [key[start:] for key in tx.keys(layout.pages_prefix(self.index))]

    def token(self) -> Hashable | None:
        """Changes when the stored list or the cached projects change; None: not cacheable."""
        self.writes.flush()
        with self.env.store.read() as tx:
            names = tx.key_serial(layout.names_key(self.index))
            known = tx.key_serial(layout.known_key(self.index)) or 0
        if self._uses_upstream() and names is None:
            return None
        return (names if self._uses_upstream() else None, known)

    def names(self) -> Iterator[str]:
        """Every project name: the stored upstream list plus cached projects not on it."""
        local = self.local_names()
        if not self._uses_upstream():
            return iter(local)
        info = self.info()
        if info is None or not self.env.blobs.exists(info["sha256"]):
            try:
                self._flight.do("names", lambda: self._fetch(lambda _stored: True))
            except DevpiError as exc:
                log.warning(
                    "%s: cannot fetch the upstream project list (%s); listing the %s "
                    "cached projects",
                    self.index,
                    exc.message,
                    len(local),
                )
                return iter(local)
            info = self.info()
            if info is None:
                return iter(local)
        raw = self._open_stored(info)
        if raw is None:
            return iter(local)
        if time.time() > info.get("at", 0) + self.expiry:
            self._refresh_in_background()
        return _merged(local, _stored(raw))

    def find(self, needle: str, limit: int) -> list[str]:
        """Up to ``limit`` names containing ``needle`` (exact, then prefixes, then the rest),
        from the cached projects and the stored upstream list. Never waits for the upstream:
        without a stored list it starts a background fetch and answers from the cache."""
        local = b"\n" + "\n".join(self.local_names()).encode() + b"\n"
        found = _find(local, needle.encode(), limit)
        if self._uses_upstream():
            stored = self._stored_bytes()
            if stored is None:
                self._refresh_in_background()
            else:
                found += _find(stored, needle.encode(), limit)
        return list(dict.fromkeys(found))

    def _stored_bytes(self) -> bytes | None:
        """The stored list decompressed, kept while it is current (about 12 bytes a name)."""
        info = self.info()
        if info is None:
            return None
        with self._searchable_lock:
            if self._searchable is not None and self._searchable[0] == info["sha256"]:
                return self._searchable[1]
            raw = self._open_stored(info)
            if raw is None:
                return None
            with raw, gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                data = b"\n" + gz.read()
            self._searchable = (info["sha256"], data)
            return data

    def _open_stored(self, info: dict[str, Any]) -> BinaryIO | None:
        """The stored list, opened now: a refresh that replaces it (and drops the blob) while
        a client still reads the page cannot take it away from under the reader; one that did
        so between reading ``info`` and opening it is followed to the new list."""
        for _attempt in range(3):
            try:
                return self.env.blobs.open(info["sha256"])
            except FileNotFoundError:
                found = self.info()
                if found is None or found["sha256"] == info["sha256"]:
                    return None
                info = found
        return None

    def close(self, timeout: float = 10) -> None:
        """Wait for a background refresh (the stores close after this)."""
        self._closed = True
        if self._background is not None:
            self._background.join(timeout)

    def _refresh_in_background(self) -> None:
        if self._closed or (self._background is not None and self._background.is_alive()):
            return
        self._background = threading.Thread(
            target=self._refresh_quietly, daemon=True, name=f"names-{self.index}"
        )
        self._background.start()

    def _refresh_quietly(self) -> None:
        try:
            self._flight.do("names", lambda: self._fetch(self._fresh))
        except DevpiError as exc:
            log.warning(
                "%s: refreshing the upstream project list failed: %s", self.index, exc.message
            )
        except Exception:  # a background thread has nobody else to tell
            log.exception("%s: refreshing the upstream project list failed", self.index)

    def _fetch(self, skip_if: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """Fetch and store the list under the ``names:<index>`` lease: of the processes sharing
        the store, one refreshes it and the others read what it stored. With the lease, a
        stored list that passes ``skip_if`` is kept as it is."""
        if self.source is None:
            raise UpstreamUnavailable(f"{self.index} has no usable upstream")
        lease = Lease(
            self.env.store, f"names:{self.index}", self._holder, self.settings.fill_lease_ttl
        )
        deadline = time.monotonic() + self.settings.list_timeout
        while not lease.acquire():
            if self._usable(self.info()):
                return  # another process refreshes it; the stored list is served meanwhile
            if self._closed:
                return
            if time.monotonic() > deadline:  # no list at all, and the holder is stuck
                self._fetch_leased()
                return
            time.sleep(LIST_POLL)
        with lease.held():
            info = self.info()
            if skip_if is not None and info is not None and self._usable(info) and skip_if(info):
                return  # another process stored (or refreshed) it while this one waited
            self._fetch_leased()

    def _fresh(self, info: dict[str, Any]) -> bool:
        return time.time() <= float(info.get("at", 0)) + self.expiry

    def _usable(self, info: dict[str, Any] | None) -> bool:
        return info is not None and self.env.blobs.exists(info["sha256"])

    def _fetch_leased(self) -> None:
        assert self.source is not None
        old = self.info()
        etag = old.get("etag") if old and self.env.blobs.exists(old["sha256"]) else None
        self.counters.add("upstream_list_requests")
        try:
            result = self.source.get_names(etag=etag)
            if result.names is None:
                self._store(
                    old["sha256"] if old else "", etag, int(old.get("count", 0)) if old else 0
                )
                return
            with BlobIngest(self.env.blobs, self.env.tmpdir) as ingest:
                count = _write_gzip(ingest, result.names)
                sha256 = ingest.commit()
        except DevpiError:
            self.counters.add("upstream_errors")
            raise
        self._store(sha256, result.etag, count)
        log.info("%s: stored the upstream project list (%s names)", self.index, count)

    def _store(self, sha256: str, etag: str | None, count: int) -> None:
        with self.env.store.write() as tx:
            old = tx.get(layout.names_key(self.index))
            if old and old["sha256"] != sha256:
                drop_ref(tx, self.env.blobs, old["sha256"], self.owner, store=self.env.store)
            add_ref(tx, self.env.blobs, sha256, self.owner)
            tx.set(
                layout.names_key(self.index),
                {"sha256": sha256, "etag": etag, "at": round(time.time(), 3), "count": count},
            )


def _line_at(data: bytes, pos: int) -> tuple[str, int]:
    """The line containing ``pos`` and the position after it."""
    start = data.rfind(b"\n", 0, pos) + 1
    end = data.find(b"\n", pos)
    end = len(data) if end == -1 else end
    return data[start:end].decode(), end


SCAN_CAP = 2_000  # occurrences sorted in one pass; search shows at most 1,000 names


def _find(data: bytes, needle: bytes, limit: int) -> list[str]:
    """Names in ``data`` ("\n" + one name per line) containing ``needle``: exact matches, then
    prefixes, then other substrings. One ``bytes.find`` pass (a scan at memory speed) sorts
    every occurrence into its tier; only a needle found more than SCAN_CAP times is looked
    for again as an exact name and as a prefix, so those tiers stay complete."""
    if not needle or b"\n" in needle:
        return []
    tiers: tuple[list[str], list[str], list[str]] = ([], [], [])
    seen = 0
    pos = data.find(needle)
    while pos != -1 and seen < SCAN_CAP:
        name, end = _line_at(data, pos)
        at_start = data[pos - 1:pos] == b"\n"
        tier = (0 if end == pos + len(needle) else 1) if at_start else 2
        tiers[tier].append(name)
        seen += 1
        pos = data.find(needle, end)
    if pos != -1:  # capped: the exact name and the prefixes may lie further on
        tiers[0][:] = [needle.decode()] if b"\n" + needle + b"\n" in data else []
        tiers[1][:] = []
        pos = data.find(b"\n" + needle)
        while pos != -1 and len(tiers[1]) < limit:
            name, end = _line_at(data, pos + 1)
            if name != needle.decode():
                tiers[1].append(name)
            pos = data.find(b"\n" + needle, end)
    found = dict.fromkeys([*tiers[0], *tiers[1], *tiers[2]])
    return list(found)[:limit]


def _write_gzip(sink: BlobIngest, names: Iterable[str]) -> int:
    count = 0
    batch: list[str] = []
    with gzip.GzipFile(fileobj=_Sink(sink), mode="wb", compresslevel=6, mtime=0) as gz:
        for name in names:
            batch.append(name)
            if len(batch) >= BATCH:
                gz.write(("\n".join(batch) + "\n").encode())
                count += len(batch)
                batch = []
        if batch:
            gz.write(("\n".join(batch) + "\n").encode())
            count += len(batch)
    return count


class _Sink(io.RawIOBase):
    """A writable file object over a :class:`BlobIngest`, for gzip."""

    def __init__(self, ingest: BlobIngest) -> None:
        self.ingest = ingest

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.ingest.write(chunk)
        return len(chunk)


def _stored(raw: BinaryIO) -> Iterator[str]:
    with raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        for line in lines:
            name = line.rstrip("\n")
            if name:
                yield name


def _merged(local: list[str], stored: Iterator[str]) -> Iterator[str]:
    # cached projects normally are on the upstream list too; the few that are not come first
    local_set = set(local)
    seen: set[str] = set()
    for name in stored:
        if name in local_set:
            seen.add(name)
        yield name
    yield from (name for name in local if name not in seen)
