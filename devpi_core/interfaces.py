"""Service contracts: storage, password hashing, mirror sources and simple-page policies.

Implementations subclass these ABCs; ``devpi_core.testing.contracts`` holds test suites that every
storage implementation runs unchanged.
"""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Generic, TypeVar, cast

from devpi_core import search

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
    from devpi_core.search import SearchQuery, SearchResult


T = TypeVar("T")
# How long MetadataStore.current_serial() may lag another process's commit, in seconds.
SERIAL_BOUND = 0.1


class StashKey(Generic[T]):
    """A typed key of a :class:`Stash`: ``DOOMED = StashKey[set[str]]()`` at module level."""

    __slots__ = ()


class Stash:
    """Per-transaction state of the code using a transaction (pytest's ``Stash`` is the model).

    Code that needs to remember something for the rest of a write transaction keeps it here
    under its own :class:`StashKey`, instead of setting attributes on a transaction object it
    does not own.
    """

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[StashKey[Any], object] = {}

    def __getitem__(self, key: StashKey[T]) -> T:
        return cast("T", self._values[key])

    def __setitem__(self, key: StashKey[T], value: T) -> None:
        self._values[key] = value

    def __contains__(self, key: StashKey[T]) -> bool:
        return key in self._values

    def get(self, key: StashKey[T], default: T) -> T:
        """The value under ``key``, or ``default``."""
        return cast("T", self._values.get(key, default))

    def setdefault(self, key: StashKey[T], default: T) -> T:
        """The value under ``key``, storing ``default`` first if there is none."""
        return cast("T", self._values.setdefault(key, default))


class ReadTransaction(abc.ABC):
    """A consistent view of the metadata store at ``serial``.

    Keys are ``/``- and ``:``-separated strings; values are JSON-compatible data (dict, list,
    str, int, float, bool, None). Plugins keep their data under a prefix of their own. Key
    order is byte order of the keys' UTF-8 encoding (the same as code point order), whatever
    the backend's default collation.
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
        """Yield ``(key, value)`` for every key starting with ``prefix``, in byte order."""

    def keys(self, prefix: str) -> Iterator[str]:
        """Yield every key starting with ``prefix``, in byte order."""
        for key, _value in self.items(prefix):
            yield key

    def search(self, query: SearchQuery) -> SearchResult:
        """Rank the search documents (:mod:`devpi_core.search`) of ``query.scopes``.

        The default reads every document of those scopes; a store with a full-text index
        overrides this and ranks the same way (the contract suite checks it).
        """
        return search.scan(self, query)


class WriteTransaction(ReadTransaction):
    """A read transaction that can also change keys; commits atomically on a clean exit.

    A commit that changed at least one key increments the store's serial by one, so its changes
    carry ``serial + 1`` (``serial`` being the latest serial when the transaction began, as
    writers are serialized); a transaction that changed nothing creates no serial. An exception
    inside the ``with`` block rolls back.

    Writers are serialized across every process sharing the store (several nodes on one
    database), so serials are gap-free and in commit order. Per-transaction state of the code
    using the transaction lives in :attr:`stash`.
    """

    _stash: Stash | None = None

    @property
    def stash(self) -> Stash:
        """State that code using this transaction keeps until it ends (see :class:`Stash`)."""
        if self._stash is None:
            self._stash = Stash()
        return self._stash

    @abc.abstractmethod
    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``; a value equal to the stored one is not a change."""

    @abc.abstractmethod
    def delete(self, key: str) -> bool:
        """Remove ``key``; return whether it existed."""

    @abc.abstractmethod
    def after_commit(self, callback: Callable[[int], None]) -> None:
        """Run ``callback(serial)`` once the transaction has committed (not on rollback).

        Callbacks run in registration order after the commit, outside the writer lock: other
        writers (in this or another process) may have committed since, and a callback may open
        transactions of its own. Work that must not race other writers belongs in a write
        transaction, not in a callback.
        """


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
        processes* sharing the store by a short, bounded time (``SERIAL_BOUND`` seconds at
        most), but never this store's own commits nor a serial one of its read transactions
        has seen. A new read transaction always sees every commit made before it began.
        """

    @abc.abstractmethod
    def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Take the lease ``name`` for ``holder`` for ``ttl`` seconds; return whether it is held.

        Leases are for work only one process of all those sharing the store should do (a
        mirror fill of one file, garbage collection): free, expired or already ``holder``'s
        leases are taken (renewed); a lease another holder keeps heartbeating is not.
        """

    @abc.abstractmethod
    def renew_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Heartbeat: extend ``holder``'s lease by ``ttl`` seconds from now; False once lost."""

    @abc.abstractmethod
    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up if ``holder`` holds it."""

    def shared_identity(self, uuid: str, secret: bytes) -> tuple[str, bytes]:
        """The server uuid and token secret every process sharing this store uses.

        The first caller's values are kept and returned to every later caller, so a login
        token made by one node verifies on every other. Stores only one process uses may
        return the arguments.
        """
        return uuid, secret

    def problems(self) -> list[str]:
        """Inconsistencies in the store's own bookkeeping (``devpi-core fsck``): a serial
        sequence with gaps, a changelog that disagrees with the serial. Empty when sound."""
        return []

    def close(self) -> None:  # noqa: B027 - optional for stores that hold nothing open
        """Release connections and files."""


@dataclass(frozen=True)
class BlobStat:
    """What one call tells about a stored blob: its size and when it was last put.

    ``mtime`` is the time (seconds since the epoch) of the latest :meth:`BlobStore.put_file`
    of this content, including puts of content that was already stored: blob garbage
    collection keys its grace period on it (see :meth:`BlobStore.delete`). Object stores may
    round it down to whole seconds.
    """

    size: int
    mtime: float


def serial_problems(
    serial: int, low: int | None, high: int | None, count: int, newest: int | None
) -> list[str]:
    """For :meth:`MetadataStore.problems`: what is wrong with the serial ``serial``, a
    changelog of ``count`` serials from ``low`` to ``high`` (pruned at the old end), and keys
    written at serials up to ``newest``."""
    found = []
    if high is not None and high != serial:
        found.append(f"the serial is {serial} but the changelog ends at {high}")
    if low is not None and high is not None and count != high - low + 1:
        found.append(f"the changelog from {low} to {high} has gaps ({count} entries)")
    if newest is not None and newest > serial:
        found.append(f"a key was written at serial {newest}, after the serial {serial}")
    return found


class BlobStore(abc.ABC):
    """File contents addressed by their sha256 hex digest.

    Writers stream into a temporary file (``devpi_core.blobs.BlobIngest``), verify size and hash,
    fsync it and only then hand it over with :meth:`put_file`; metadata is committed after that,
    so a crash leaves at most an unreferenced blob, never metadata pointing at nothing.

    Methods may do network I/O (an object store): never call them inside a write transaction.
    """

    #: True inside :meth:`batch` when the store makes blobs durable at the block's end: writers
    #: then skip their own fsync (``BlobIngest.commit``)
    deferred_sync: bool = False

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Store many blobs with one flush to disk at the end (``devpi-core import``).

        Inside the block :meth:`put_file` may take files that are not fsynced and defer
        durability until the block ends (set :attr:`deferred_sync` meanwhile); the end makes
        every blob put in it durable. Used only while nothing else writes. The default defers
        nothing. Per-file fsyncs were 75% of an import's time (8.7 s of 11.6 s for 500 files).
        """
        yield

    @abc.abstractmethod
    def put_file(self, path: str, sha256: str) -> None:
        """Take ownership of the complete, fsynced file at ``path`` as blob ``sha256``.

        Atomic: afterwards the blob is either fully there or not at all. ``path`` no longer
        exists afterwards. Storing an existing blob again stores nothing new but refreshes its
        put time (:attr:`BlobStat.mtime`), so a concurrent :meth:`delete` with ``older_than``
        keeps it.
        """

    @abc.abstractmethod
    def exists(self, sha256: str) -> bool:
        """Return whether the blob is stored."""

    @abc.abstractmethod
    def size(self, sha256: str) -> int | None:
        """Return the blob's size in bytes, or None if it is not stored."""

    def stat(self, sha256: str) -> BlobStat | None:
        """Return size and last put time in one call (one request for an object store), or
        None if the blob is not stored. Stores should override this default, which knows no
        put time and reports 0."""
        size = self.size(sha256)
        return None if size is None else BlobStat(size, 0.0)

    @abc.abstractmethod
    def open(self, sha256: str) -> BinaryIO:
        """Open the blob for reading (seekable); raise ``FileNotFoundError`` if absent.

        Never reads the whole blob into memory: an object store streams and reads ranges.
        """

    def local_path(self, sha256: str) -> str | None:
        """Return a filesystem path for zero-copy serving, or None if the store has none."""
        return None

    def url(self, sha256: str, *, filename: str, content_type: str) -> str | None:
        """Return a short-lived URL clients may be redirected to for the blob's bytes, or None
        to have this server send them (the default; an object store returns a presigned URL
        when configured to)."""
        return None

    def check(self) -> None:  # noqa: B027 - a store with nothing to reach has nothing to check
        """Raise ``OSError`` unless the store can be reached now (cheap: ``GET /+ready`` calls
        it per health check)."""

    @abc.abstractmethod
    def delete(self, sha256: str, *, older_than: float | None = None) -> bool:
        """Remove the blob if it exists; return whether it was removed.

        With ``older_than`` (seconds since the epoch), remove it only if its last put
        (:attr:`BlobStat.mtime`) was before that time: garbage collection passes "now minus
        the grace period", so content uploaded again since it became unreferenced is kept.
        """

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
