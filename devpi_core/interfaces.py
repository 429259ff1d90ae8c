"""Service contracts: storage, password hashing, mirror sources and simple-page policies.

Implementations subclass these ABCs; ``devpi_core.testing.contracts`` holds test suites that every
storage implementation runs unchanged.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterator, Sequence
    from contextlib import AbstractContextManager

    from devpi_core.records import (
        IndexRecord,
        Link,
        ProjectView,
        ServeDecision,
        UpstreamNames,
        UpstreamPage,
        UpstreamStream,
    )


class ReadTransaction(abc.ABC):
    """A consistent view of the metadata store at ``serial``.

    Keys are ``/``- and ``:``-separated strings; values are JSON-compatible data (dict, list,
    str, int, float, bool, None). Plugins keep their data under a prefix of their own.
    """

    serial: int

    @abc.abstractmethod
    def get(self, key: str) -> Any:
        """Return the value stored under ``key``, or None."""

    @abc.abstractmethod
    def key_serial(self, key: str) -> int | None:
        """Return the serial of the transaction that last wrote ``key``, or None if absent."""

    @abc.abstractmethod
    def items(self, prefix: str) -> Iterator[tuple[str, Any]]:
        """Yield ``(key, value)`` for every key starting with ``prefix``, in key order."""

    def keys(self, prefix: str) -> Iterator[str]:
        """Yield every key starting with ``prefix``, in key order."""
        for key, _value in self.items(prefix):
            yield key


class WriteTransaction(ReadTransaction):
    """A read transaction that can also change keys; commits atomically on a clean exit.

    A commit that changed at least one key increments the store's serial by one, so its changes
    carry ``serial + 1`` (``serial`` being the latest serial when the transaction began, as
    writers are serialized); a transaction that changed nothing creates no serial. An exception
    inside the ``with`` block rolls back.
    """

    @abc.abstractmethod
    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``; a value equal to the stored one is not a change."""

    @abc.abstractmethod
    def delete(self, key: str) -> bool:
        """Remove ``key``; return whether it existed."""

    @abc.abstractmethod
    def after_commit(self, callback: Callable[[int], None]) -> None:
        """Run ``callback(serial)`` once the transaction has committed (not on rollback)."""


class MetadataStore(abc.ABC):
    """Users, indexes, projects and files: small records under string keys, with a serial."""

    @abc.abstractmethod
    def read(self) -> AbstractContextManager[ReadTransaction]:
        """Open a read transaction; reads never block on writers."""

    @abc.abstractmethod
    def write(self) -> AbstractContextManager[WriteTransaction]:
        """Open the write transaction; one writer at a time, keep it short (no network I/O)."""

    @abc.abstractmethod
    def current_serial(self) -> int:
        """Return the serial of the last committed change (0 for an empty store).

        Called on every request, so it must be cheap: it may lag commits made by *other
        processes* sharing the store by a short, bounded time, but never this store's own
        commits nor a serial one of its read transactions has seen.
        """

    def close(self) -> None:  # noqa: B027 - optional for stores that hold nothing open
        """Release connections and files."""


class BlobStore(abc.ABC):
    """File contents addressed by their sha256 hex digest.

    Writers stream into a temporary file (``devpi_core.blobs.BlobIngest``), verify size and hash,
    fsync it and only then hand it over with :meth:`put_file`; metadata is committed after that,
    so a crash leaves at most an unreferenced blob, never metadata pointing at nothing.
    """

    @abc.abstractmethod
    def put_file(self, path: str, sha256: str) -> None:
        """Take ownership of the complete, fsynced file at ``path`` as blob ``sha256``.

        Atomic: afterwards the blob is either fully there or not at all. ``path`` no longer
        exists afterwards. Storing an existing blob again is a no-op.
        """

    @abc.abstractmethod
    def exists(self, sha256: str) -> bool:
        """Return whether the blob is stored."""

    @abc.abstractmethod
    def size(self, sha256: str) -> int | None:
        """Return the blob's size in bytes, or None if it is not stored."""

    @abc.abstractmethod
    def open(self, sha256: str) -> BinaryIO:
        """Open the blob for reading (seekable); raise ``FileNotFoundError`` if absent."""

    def local_path(self, sha256: str) -> str | None:
        """Return a filesystem path for zero-copy serving, or None if the store has none."""
        return None

    @abc.abstractmethod
    def delete(self, sha256: str) -> None:
        """Remove the blob if it exists."""

    @abc.abstractmethod
    def iter_blobs(self) -> Iterator[str]:
        """Yield the digest of every stored blob (for consistency checks and clean-up)."""


class PasswordHasher(abc.ABC):
    """Turns passwords into stored hashes and checks them."""

    @abc.abstractmethod
    def hash(self, password: str) -> str:
        """Return a salted hash string for ``password``."""

    @abc.abstractmethod
    def verify(self, password: str, pwhash: str) -> bool:
        """Return whether ``password`` matches ``pwhash``; False for unknown hash formats."""

    @abc.abstractmethod
    def needs_update(self, pwhash: str) -> bool:
        """Return whether ``pwhash`` uses outdated parameters and should be re-hashed."""


class MirrorSource(abc.ABC):
    """Reads one upstream index for one mirror index (``mirror_source`` chooses the kind).

    Built by the factory of a :class:`~devpi_core.specs.MirrorSourceSpec` with the index's
    :class:`~devpi_core.specs.MirrorSourceOptions`. A source only talks to its upstream: the
    mirror index type decides freshness, caching, single-flight and stale-if-error. Every call
    is bounded by the options' time-outs and may run in any thread, concurrently. Failures are
    raised as :class:`devpi_core.errors.UpstreamUnavailable` (502, or status 504 for a
    time-out) with a message naming what failed; a missing file is
    :class:`devpi_core.errors.NotFound`.
    """

    @abc.abstractmethod
    def get_page(self, project: str, *, etag: str | None = None) -> UpstreamPage:
        """Fetch the page of the normalized ``project``.

        With ``etag`` the request is conditional and may answer ``not_modified``. Only files
        of ``project`` with absolute ``http(s)`` URLs are reported; credentials never appear
        in URLs.
        """

    @abc.abstractmethod
    def get_names(self, *, etag: str | None = None) -> UpstreamNames:
        """Fetch the upstream's project list as a stream of normalized names.

        The list may hold hundreds of thousands of names: never collect it in memory.
        """

    @abc.abstractmethod
    def open_file(self, url: str) -> UpstreamStream:
        """Start reading the file at ``url`` (one of the URLs :meth:`get_page` reported)."""

    def close(self) -> None:  # noqa: B027 - optional for sources that hold nothing open
        """Release connections; called when the index changes or the server stops."""


class SimplePolicy(abc.ABC):
    """A response-time filter over the links of a simple page.

    Policies run on the merged links before rendering; rendered pages are cached per
    :meth:`cache_key`, so return a key that changes whenever :meth:`filter` may answer
    differently (for a minimum release age, the current hour is enough).
    """

    @abc.abstractmethod
    def cache_key(self, index: IndexRecord, project: str) -> Hashable:
        """Return a hashable value identifying this policy's current behaviour."""

    @abc.abstractmethod
    def filter(self, index: IndexRecord, project: str, links: Sequence[Link]) -> Sequence[Link]:
        """Return the links to show (a subsequence of ``links``)."""


class ServePolicy(abc.ABC):
    """Decides which versions of a project an index holds back, everywhere it serves them.

    Offered through a :class:`~devpi_core.specs.ServePolicySpec`. Core asks :meth:`decide` once
    per change of what feeds it (the store's serial, the index's configuration, the policy's
    :meth:`state`), keeps the decision beside the rendered pages, and applies it to the simple
    pages (HTML and JSON, PEP 700 ``versions``), devpi's project and version JSON, the web UI
    and file downloads under every URL (``+f``, ``_f``, ``+e``, ``.metadata``): a download of a
    held version answers 403 with the decision's message, looked up in O(1).
    """

    @abc.abstractmethod
    def applies(self, index: IndexRecord) -> bool:
        """Whether the policy has anything to say about ``index`` (called per request: cheap)."""

    @abc.abstractmethod
    def state(self, index: IndexRecord, project: str) -> tuple[Hashable, float | None]:
        """``(key, seconds)``: a key that changes whenever :meth:`decide` may answer differently
        for the same links (the time the next held version becomes eligible, say), and how many
        seconds the current answer holds at most (None: until something is written). Called per
        request: cheap. Pages are cached per key; ``Cache-Control: max-age`` never outlives
        ``seconds``."""

    @abc.abstractmethod
    def decide(self, view: ProjectView) -> ServeDecision:
        """The versions of ``view.project`` that ``view.index`` must not serve, and why."""
