"""The contract between core and index types (``stage``, ``mirror`` or a third party's).

Core routes every request for ``/<user>/<index>/...`` to the :class:`IndexType` object of that
index, built by the factory of the type's :class:`~devpi_core.specs.IndexTypeSpec`. Core does the
HTTP work (negotiation, merging the pages of the indexes the type names, policies, rendering,
caching, Range, ETag); the index type supplies data and answers the questions of its own rules:
which indexes serve its projects (:meth:`IndexType.resolution_order`), which of those contribute
a project (:meth:`IndexType.contributors`), who may upload (:meth:`IndexType.allows`) and whether
it or its entries may be deleted (:meth:`IndexType.may_delete`). The ``stage`` type answers them
with devpi's inheritance over ``bases``, ``mirror_whitelist``, ``acl_upload`` and ``volatile``.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from devpi_core import services
from devpi_core.errors import Forbidden, UpstreamUnavailable

if TYPE_CHECKING:
    from devpi_core.interfaces import BlobStore, MetadataStore, WriteTransaction
    from devpi_core.records import (
        IndexRecord,
        Link,
        ProjectStatus,
        UploadCheck,
        WithheldFile,
    )
    from devpi_core.services import ServiceRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexEnv:
    """What an index type may use: the stores, a temp directory on the blob store's filesystem,
    the process's services (``services.get(MyService)``: what its plugin registered in
    ``devpi_startup``), offline mode, ``check_upload`` to ask the upload gate
    (``devpi_check_upload``) before a file is stored, and ``emit`` to fire event hooks after a
    commit.
    """

    store: MetadataStore
    blobs: BlobStore
    tmpdir: str
    services: ServiceRegistry
    offline: bool
    emit: Callable[[object], None]
    max_upload_size: int = 1 << 30
    check_upload: Callable[[UploadCheck], None] = lambda _check: None


@dataclass(frozen=True)
class FileRef:
    """A file an index can serve at ``relpath``.

    ``sha256`` names the blob holding the content once stored; ``meta`` is the JSON answered to
    ``Accept: application/json`` (devpi's ``releasefilemeta``). ``withheld`` says why the file
    is no longer served (its project is quarantined, the upstream removed it): core answers
    410 Gone with that message, while deleting the file still works.
    """

    relpath: str
    filename: str
    project: str
    version: str | None
    sha256: str | None
    hashes: Mapping[str, str] = field(default_factory=dict)
    size: int | None = None
    last_modified: float | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    rel: str = "releasefile"
    withheld: str | None = None


@dataclass
class FileStream:
    """Content that is not in the blob store yet, streamed as it arrives (a mirror's first fetch).

    ``chunks`` yields the bytes; ``close`` is called when the client is done or gone. A
    ``redirect`` URL sends the client there instead (a mirror with ``mirror_use_external_urls``).
    ``content_type`` is what the upstream said, for information only: clients get the same
    allowlisted type as for the cached file (an upstream's ``text/html`` must not reach them).
    """

    chunks: Iterator[bytes]
    size: int | None
    content_type: str | None = None
    last_modified: float | None = None
    close: Callable[[], None] = lambda: None
    redirect: str | None = None


@dataclass(frozen=True)
class Contributors:
    """The indexes whose links make up a project page (in merge order), their page tokens,
    the indexes held back (a mirror ``mirror_whitelist`` blocks) and until when it holds."""

    stages: tuple[IndexRecord, ...]
    tokens: tuple[Hashable, ...]
    blocked: tuple[str, ...] = ()
    fresh_until: float = float("inf")


def collect_contributors(
    order: Sequence[IndexRecord],
    project: str,
    type_of: Callable[[IndexRecord], IndexType],
    verdict: Callable[[IndexRecord, IndexType], Literal["ask", "skip", "block"]] = (
        lambda _record, _itype: "ask"
    ),
) -> Contributors:
    """Walk ``order`` for ``project``. ``verdict(record, index_type)`` is a type's rule for each
    index: ask it for its page (``"ask"``), leave it out (``"skip"``) or hold it back and say so
    (``"block"``, a mirror the ``mirror_whitelist`` of a stage holds back). An asked index
    contributes if it has a page (a page token). An upstream failure of the first index is
    raised; of a later one (a base mirror) it is logged and the index left out, as devpi does.
    """
    stages: list[IndexRecord] = []
    tokens: list[Hashable] = []
    blocked: list[str] = []
    fresh_until = float("inf")
    for record in order:
        itype = type_of(record)
        said = verdict(record, itype)
        if said == "block":
            blocked.append(record.fullname)
        if said != "ask":
            continue
        try:
            token = itype.page_token(project)
        except UpstreamUnavailable:
            if record is order[0]:
                raise
            log.warning(
                "index %s: upstream failed for %s; leaving it out", record.fullname, project
            )
            continue
        if token is None:
            continue
        stages.append(record)
        tokens.append(token)
        fresh_until = min(fresh_until, itype.fresh_until(project))
    return Contributors(tuple(stages), tuple(tokens), tuple(blocked), fresh_until)


def merge_links(parts: Sequence[Sequence[Link]]) -> list[Link]:
    """Concatenate per-index links in merge order; a filename seen earlier shadows later ones."""
    seen: set[str] = set()
    merged = []
    for links in parts:
        for link in links:
            if link.filename not in seen:
                seen.add(link.filename)
                merged.append(link)
    return merged


@dataclass(frozen=True)
class RestoredFile:
    """A file brought back from a dump (``devpi-core import``); its blob is already stored.

    ``rel`` is ``releasefile``, ``doczip`` or ``toxresult``; ``for_filename`` names the release
    file a tox result belongs to; ``log`` is the file's history as devpi writes it;
    ``upload_time`` is an ISO time (devpi-core's PEP 700 time, else the dump's
    ``last_modified``); ``url`` is where a mirrored file came from (``entrymapping.url``).
    """

    filename: str
    rel: str
    version: str
    sha256: str
    size: int
    hashes: Mapping[str, str]
    log: Sequence[Mapping[str, Any]] = ()
    last_modified: float | None = None
    upload_time: str | None = None
    for_filename: str | None = None
    url: str | None = None


class IndexType(abc.ABC):
    """Serves one index. Instances are cached per index configuration serial."""

    def __init__(self, env: IndexEnv, record: IndexRecord) -> None:
        self.env = env
        self.record = record

    @property
    def name(self) -> str:
        """``user/index``."""
        return self.record.fullname

    # -- simple pages --------------------------------------------------------------------
    @abc.abstractmethod
    def project_names(self) -> Iterable[str]:
        """Return the normalized names of the projects on this index (not its bases)."""

    def find_names(self, needle: str, limit: int) -> list[str]:
        """Return up to ``limit`` of :meth:`project_names` containing the normalized ``needle``,
        for search: the exact name first, then prefixes, then other substrings.

        The default scans :meth:`project_names`; a type with a long list (a mirror) overrides
        it, and must never wait for the network here.
        """
        exact: list[str] = []
        prefix: list[str] = []
        inner: list[str] = []
        for name in self.project_names():
            if name == needle:
                exact.append(name)
            elif name.startswith(needle):
                prefix.append(name)
            elif needle in name and len(inner) < limit:
                inner.append(name)
        return (exact + prefix + inner)[:limit]

    @abc.abstractmethod
    def has_project(self, project: str) -> bool:
        """Return whether this index itself has ``project``; cheap, no network I/O."""

    @abc.abstractmethod
    def page_token(self, project: str) -> Hashable | None:
        """Return a cheap value that changes whenever :meth:`links` would answer differently.

        None means this index does not know the project. A mirror revalidates a stale page here.
        """

    def fresh_until(self, project: str) -> float:
        """Until when (``time.time()``) :meth:`page_token` stays valid without asking again.

        Stages change only by writes, which core notices through the serial: infinity. A
        mirror returns when its cached page needs revalidating.
        """
        return float("inf")

    def page_warning(self, project: str) -> str | None:
        """A warning to send with the page (a mirror serving a stale copy says so), or None."""
        return None

    def names_token(self) -> Hashable | None:
        """A cheap value that changes whenever :meth:`project_names` would; None: don't cache."""
        return None

    @abc.abstractmethod
    def links(self, project: str) -> Sequence[Link]:
        """Return the files of ``project`` on this index, newest upload last."""

    def project_status(self, project: str) -> ProjectStatus | None:
        """The PEP 792 status of ``project`` on this index; None when it has none (active).

        Part of what :meth:`page_token` covers: a change of status changes the token.
        """
        return None

    def set_project_status(
        self, project: str, status: ProjectStatus, *, username: str | None
    ) -> None:
        """Set the PEP 792 status of ``project`` (``PATCH /<user>/<index>/<project>``)."""
        raise Forbidden(
            f"index {self.name} of type {self.record.type} cannot set a project status"
        )

    # -- project and version JSON --------------------------------------------------------
    @abc.abstractmethod
    def versions(self, project: str) -> Mapping[str, Mapping[str, Any]]:
        """Return ``{version: verdata}``; ``verdata["+links"]`` entries carry ``relpath``."""

    def version(self, project: str, version: str) -> Mapping[str, Any] | None:
        """Return the verdata of one version, or None; override when that is cheaper than
        :meth:`versions` (a stage reads one record instead of every version's)."""
        return self.versions(project).get(version)

    # -- files ---------------------------------------------------------------------------
    @abc.abstractmethod
    def get_file(self, relpath: str) -> FileRef | None:
        """Return the file at ``relpath`` (``user/index/+f/...``), or None."""

    def withheld_files(self) -> Iterator[WithheldFile]:
        """Stored files this index keeps (for forensics) but no longer serves: those of
        quarantined projects, those its upstream removed. Listed by ``devpi-core quarantined``.
        """
        return iter(())

    def cached_files(self) -> Iterator[FileRef]:
        """Files this index holds as a cache of another index (a mirror's downloads), with
        ``meta["url"]`` their origin; exported by ``devpi-core export --include-mirrored-files``.
        Index types that cache nothing keep the default: none."""
        return iter(())

    def refresh(self, project: str) -> None:
        """Forget what is cached about ``project`` upstream (``POST .../refresh``).

        Stages have nothing to forget: no-op.
        """
        return

    def open_uncached(self, ref: FileRef) -> FileStream | None:
        """Start fetching a file whose blob is not stored yet; None if it cannot be had."""
        return None

    # -- rules: the questions core asks -------------------------------------------------
    def bases(self) -> Sequence[str]:
        """The indexes (``user/index``) a resolution order reaching this index goes on with
        (a stage's walks the ``bases()`` of every index it reaches).

        None by default: no order reaches past this index. A type that reads its bases itself
        (to filter them) answers none, so everything of its bases reaches clients through it.
        """
        return ()

    def resolution_order(
        self, can_read: Callable[[IndexRecord], bool] | None = None
    ) -> Sequence[IndexRecord]:
        """The indexes whose pages make up this index's, this one first; indexes ``can_read``
        refuses are left out. Core caches the answer per metadata serial (and per reader when
        an index in it is not public). By default: this index alone.
        """
        return [self.record]

    def contributors(self, order: Sequence[IndexRecord], project: str) -> Contributors:
        """Which indexes of ``order`` (this index's :meth:`resolution_order`) contribute to the
        page of ``project``. By default each one having the project
        (:func:`collect_contributors`)."""
        return collect_contributors(order, project, services.indexes(self.env.services).type_of)

    def allows(self, permission: str, principals: frozenset[str]) -> bool:
        """Whether ``principals`` (:func:`devpi_core.model.acl.principals`) may ``upload``,
        ``toxresult_upload`` or ``del_entry`` on this index. Core grants reading, changing and
        deleting the index (and ``del_entry``) to its owner and the admins itself. By default:
        nobody else.
        """
        return False

    def may_delete(self, *, force: bool = False) -> bool:
        """Whether this index may be deleted (``force`` False), or projects, versions and files
        on it (``force``: the client insists, ``?force``). By default: yes."""
        return True

    # -- changes -------------------------------------------------------------------------
    def delete_project(self, project: str, *, username: str | None) -> None:
        """Remove a project and its files."""
        raise Forbidden(f"index {self.name} of type {self.record.type} cannot delete projects")

    def delete_version(self, project: str, version: str, *, username: str | None) -> None:
        """Remove one version and its files."""
        raise Forbidden(f"index {self.name} of type {self.record.type} cannot delete versions")

    def delete_file(self, ref: FileRef, *, username: str | None) -> None:
        """Remove one file."""
        raise Forbidden(f"index {self.name} of type {self.record.type} cannot delete files")

    def restore_project(
        self,
        tx: WriteTransaction,
        project: str,
        *,
        display_name: str,
        versions: Mapping[str, Mapping[str, Any]],
        files: Sequence[RestoredFile],
    ) -> None:
        """Write a project read from a dump, within ``tx`` (``devpi-core import``).

        ``versions`` maps each version to its metadata (devpi's verdata without ``+`` keys;
        ``yanked`` included when set); ``files`` are already in the blob store. A mirror is
        given its cached files (``import --include-mirrored-files``). Index types that hold no
        files of their own keep the default: a 403.
        """
        raise Forbidden(f"index {self.name} of type {self.record.type} cannot restore projects")

    def delete_all(self, tx: WriteTransaction) -> None:
        """Drop everything stored for this index, within ``tx`` (the index is being deleted).

        Remove blobs only after the commit (``tx.after_commit``), and only unreferenced ones.
        """
        return


def verdata_links(verdata: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    """Return the ``+links`` of version data (empty if none)."""
    links = verdata.get("+links", ())
    return links if isinstance(links, Sequence) else ()
