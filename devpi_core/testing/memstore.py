"""An in-memory storage plugin (metadata and blobs), for tests.

It proves that core depends on the storage contracts only: the functional suite runs with
``storage: {metadata: memory, blobs: memory}`` and the filesystem plugin disabled.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
import time
from bisect import bisect_left
from typing import TYPE_CHECKING, Any, BinaryIO

from devpi_core import hookimpl
from devpi_core.interfaces import (
    BlobStat,
    BlobStore,
    MetadataStore,
    ReadTransaction,
    WriteTransaction,
)
from devpi_core.specs import StorageBackend

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping


def _freeze(value: Any) -> Any:
    # A JSON round trip gives callers their own copy and rejects what SQLite could not store.
    return json.loads(json.dumps(value))


class _Read(ReadTransaction):
    def __init__(self, data: Mapping[str, tuple[Any, int]], serial: int) -> None:
        self.data = data
        self.serial = serial

    def get(self, key: str) -> Any:
        entry = self.data.get(key)
        return None if entry is None else _freeze(entry[0])

    def key_serial(self, key: str) -> int | None:
        entry = self.data.get(key)
        return None if entry is None else entry[1]

    def items(self, prefix: str) -> Iterator[tuple[str, Any]]:
        keys = sorted(self.data)
        for key in keys[bisect_left(keys, prefix):]:
            if not key.startswith(prefix):
                break
            yield key, _freeze(self.data[key][0])


class _Write(_Read, WriteTransaction):
    def __init__(self, data: dict[str, tuple[Any, int]], serial: int) -> None:
        super().__init__(data, serial)
        self.data: dict[str, tuple[Any, int]] = data
        self.changed = False
        self.callbacks: list[Callable[[int], None]] = []

    def set(self, key: str, value: Any) -> None:
        value = _freeze(value)
        entry = self.data.get(key)
        if entry is not None and entry[0] == value:
            return
        self.data[key] = (value, self.serial + 1)
        self.changed = True

    def delete(self, key: str) -> bool:
        existed = self.data.pop(key, None) is not None
        self.changed = self.changed or existed
        return existed

    def after_commit(self, callback: Callable[[int], None]) -> None:
        self.callbacks.append(callback)


class MemoryStore(MetadataStore):
    """Copy-on-write dict: readers keep the snapshot they started with."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[Any, int]] = {}
        self._serial = 0
        self._lock = threading.Lock()
        self._leases: dict[str, tuple[str, float]] = {}
        self._lease_lock = threading.Lock()

    def current_serial(self) -> int:
        return self._serial

    @contextlib.contextmanager
    def read(self) -> Iterator[ReadTransaction]:
        yield _Read(self._data, self._serial)

    @contextlib.contextmanager
    def write(self) -> Iterator[WriteTransaction]:
        with self._lock:
            tx = _Write(dict(self._data), self._serial)
            yield tx
            if not tx.changed:
                return
            self._data = tx.data
            self._serial = serial = tx.serial + 1
        for callback in tx.callbacks:  # outside the writer lock, as the contract says
            callback(serial)

    def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        with self._lease_lock:
            now = time.monotonic()
            current = self._leases.get(name)
            if current is not None and current[0] != holder and current[1] >= now:
                return False
            self._leases[name] = (holder, now + ttl)
            return True

    def renew_lease(self, name: str, holder: str, ttl: float) -> bool:
        with self._lease_lock:
            current = self._leases.get(name)
            if current is None or current[0] != holder:
                return False
            self._leases[name] = (holder, time.monotonic() + ttl)
            return True

    def release_lease(self, name: str, holder: str) -> None:
        with self._lease_lock:
            if self._leases.get(name, ("", 0.0))[0] == holder:
                del self._leases[name]


class MemoryBlobStore(BlobStore):
    """Blobs as bytes in a dict."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._put_times: dict[str, float] = {}
        self._lock = threading.Lock()

    def put_file(self, path: str, sha256: str) -> None:
        with open(path, "rb") as f:
            data = f.read()
        with self._lock:
            self._blobs.setdefault(sha256, data)
            self._put_times[sha256] = time.time()
        os.unlink(path)

    def exists(self, sha256: str) -> bool:
        return sha256 in self._blobs

    def size(self, sha256: str) -> int | None:
        blob = self._blobs.get(sha256)
        return None if blob is None else len(blob)

    def stat(self, sha256: str) -> BlobStat | None:
        with self._lock:
            blob = self._blobs.get(sha256)
            return None if blob is None else BlobStat(len(blob), self._put_times[sha256])

    def open(self, sha256: str) -> BinaryIO:
        try:
            return io.BytesIO(self._blobs[sha256])
        except KeyError:
            raise FileNotFoundError(sha256) from None

    def delete(self, sha256: str, *, older_than: float | None = None) -> bool:
        with self._lock:
            put = self._put_times.get(sha256)
            if put is None or (older_than is not None and put >= older_than):
                return False
            del self._blobs[sha256], self._put_times[sha256]
            return True

    def iter_blobs(self) -> Iterator[str]:
        yield from list(self._blobs)


@hookimpl
def devpi_metadata_backends() -> list[StorageBackend]:
    """The ``memory`` metadata backend."""
    return [StorageBackend("memory", lambda _dir, _settings: MemoryStore(), "in memory (tests)")]


@hookimpl
def devpi_blob_backends() -> list[StorageBackend]:
    """The ``memory`` blob backend."""
    return [
        StorageBackend("memory", lambda _dir, _settings: MemoryBlobStore(), "in memory (tests)")
    ]
