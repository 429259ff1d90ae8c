"""The contract between core and index types (``stage``, ``mirror`` or a third party's).

Core routes every request for ``/<user>/<index>/...`` to the :class:`IndexType` object of that
index, built by the factory of the type's :class:`~devpi_core.specs.IndexTypeSpec`. Core does the
HTTP work (negotiation, merging over bases, ``mirror_whitelist``, policies, rendering, caching,
Range, ETag); the index type supplies data.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devpi_core.errors import Forbidden

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

    def refresh(self, project: str) -> None:
        """Forget what is cached about ``project`` upstream (``POST .../refresh``).

        Stages have nothing to forget: no-op.
        """
        return

    def open_uncached(self, ref: FileRef) -> FileStream | None:
        """Start fetching a file whose blob is not stored yet; None if it cannot be had."""
        return None

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

    def delete_all(self, tx: WriteTransaction) -> None:
        """Drop everything stored for this index, within ``tx`` (the index is being deleted).

        Remove blobs only after the commit (``tx.after_commit``), and only unreferenced ones.
        """
        return


def verdata_links(verdata: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    """Return the ``+links`` of version data (empty if none)."""
    links = verdata.get("+links", ())
    return links if isinstance(links, Sequence) else ()
