"""Plain values that travel between core and plugins: identities, indexes, links, events."""

from __future__ import annotations

# Mapping at run time: msgspec resolves UpstreamFile's annotations to decode stored pages
from collections.abc import Mapping  # noqa: TC003
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

NO_HASHES: Mapping[str, str] = MappingProxyType({})


def best_hash(hashes: Mapping[str, str]) -> tuple[str, str] | None:
    """``(name, hex)`` of the hash a file is known by: sha256, else the first one given.

    One rule for the link's URL fragment, devpi's ``hash_spec``, the PEP 658 metadata attribute
    and the ``+f/<hashdir>/`` path of a mirrored file, so all of them name the same digest.
    None when there is no hash.
    """
    digest = hashes.get("sha256")
    if digest is not None:
        return "sha256", digest
    return next(iter(hashes.items()), None)


def hash_spec(hashes: Mapping[str, str]) -> str:
    """``<name>=<hex>`` of :func:`best_hash` (devpi's ``hash_spec``); "" when there is none."""
    found = best_hash(hashes)
    return "" if found is None else f"{found[0]}={found[1]}"


@dataclass(frozen=True)
class Credentials:
    """What a request claims: a user name and a secret (a password or a login token)."""

    username: str
    secret: str
    source: str = "basic"


@dataclass(frozen=True)
class Identity:
    """Who a request is, after authentication."""

    username: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoginToken:
    """A signed, expiring token issued by ``POST /+login``."""

    token: str
    expiration: int


@dataclass(frozen=True)
class IndexRecord:
    """An index as stored: ``user/name``, its type and its validated configuration.

    ``serial`` is the metadata serial of the last change to the configuration.
    """

    user: str
    name: str
    config: Mapping[str, Any]
    serial: int = 0

    @property
    def fullname(self) -> str:
        """``user/name``, the way devpi spells an index."""
        return f"{self.user}/{self.name}"

    @property
    def type(self) -> str:
        """The index type, e.g. ``stage`` or ``mirror``."""
        return str(self.config["type"])


PROJECT_STATUSES = ("active", "archived", "deprecated", "quarantined")
# how strongly a status restricts a project, for merging pages over bases (PEP 792)
_STATUS_RANK = {"active": 0, "deprecated": 1, "archived": 2, "quarantined": 3}


@dataclass(frozen=True)
class ProjectStatus:
    """A project's PEP 792 status marker: ``active``, ``archived``, ``deprecated`` or
    ``quarantined``, with an optional free-text ``reason``.

    ``archived`` and ``quarantined`` projects take no uploads; a ``quarantined`` project offers
    no file for download.
    """

    status: str = "active"
    reason: str | None = None

    @property
    def refuses_uploads(self) -> bool:
        """Whether the index must not accept uploads to the project (PEP 792)."""
        return self.status in ("archived", "quarantined")

    @property
    def serves_no_files(self) -> bool:
        """Whether the index must not offer any file of the project (PEP 792)."""
        return self.status == "quarantined"

    def message(self, project: str) -> str:
        """A sentence for clients: ``project 'x' is quarantined: <reason>``."""
        text = f"project {project!r} is {self.status}"
        return f"{text}: {self.reason}" if self.reason else text


ACTIVE = ProjectStatus()


def strongest_status(statuses: Iterable[ProjectStatus | None]) -> ProjectStatus:
    """The most restrictive of ``statuses`` (quarantined > archived > deprecated > active);
    the first one given wins a tie."""
    best = ACTIVE
    for found in statuses:
        if found is not None and _STATUS_RANK.get(found.status, 0) > _STATUS_RANK[best.status]:
            best = found
    return best


@dataclass(frozen=True)
class StatusOverBases:
    """PEP 792 over an index and its bases: the ``status`` its page shows, and the indexes
    (``user/name``) whose files of the project it withholds."""

    status: ProjectStatus
    withheld: frozenset[str]


def status_over_bases(
    index: str, statuses: Sequence[tuple[str, ProjectStatus | None]]
) -> StatusOverBases:
    """What ``index`` serves of a project whose contributing indexes (``user/name``, in
    resolution order) have ``statuses``.

    A quarantine withholds the files of the index that declares it, there and on every index
    over it. The files an index holds itself are withheld only by its own quarantine: a stage's
    own upload of ``foo`` stays served when a mirror base's upstream quarantines ``foo`` (it is
    the stage's, not the upstream's), and the page then shows the status of the indexes it
    still serves from. When nothing is left, the page shows the quarantine.
    """
    quarantined = frozenset(n for n, s in statuses if s is not None and s.serves_no_files)
    everything = frozenset(name for name, _status in statuses)
    if index in quarantined or not everything - quarantined:
        return StatusOverBases(strongest_status(s for _n, s in statuses), everything)
    served = strongest_status(s for n, s in statuses if n not in quarantined)
    return StatusOverBases(served, quarantined)


@dataclass(frozen=True)
class WithheldFile:
    """A stored file an index keeps but no longer serves (``devpi-core quarantined``): its
    project is quarantined, or the upstream removed it. ``sha256`` names the kept blob."""

    index: str
    project: str
    filename: str
    sha256: str
    reason: str


class Link(NamedTuple):
    """One file on a simple page (a named tuple: big pages hold a hundred thousand of them).

    ``relpath`` is the file's path from the server root without a leading slash (for example
    ``alice/dev/+f/a66/5a45920422f9d/pkg-1.0.tar.gz``). ``core_metadata`` holds the hashes of the
    file's METADATA when it can be served as ``<file>.metadata`` (PEP 658/714), else None.
    """

    filename: str
    relpath: str
    hashes: Mapping[str, str] = NO_HASHES
    requires_python: str | None = None
    yanked: bool | str = False
    core_metadata: Mapping[str, str] | None = None
    size: int | None = None
    upload_time: str | None = None
    version: str | None = None

    @property
    def stage(self) -> str:
        """The ``user/index`` that serves the file."""
        user, index = self.relpath.split("/", 2)[:2]
        return f"{user}/{index}"

    @property
    def hash_spec(self) -> str:
        """``<name>=<hex>`` of the file's :func:`best_hash` for URL fragments; "" if none."""
        return hash_spec(self.hashes)


@dataclass(frozen=True)
class UploadEvent:
    """A file was stored on an index (after the metadata commit)."""

    index: str
    project: str
    version: str
    filename: str
    rel: str
    username: str | None
    serial: int


@dataclass(frozen=True)
class UploadCheck:
    """A file about to be stored on an index, before anything of it is stored.

    ``action`` says how it arrives: ``"upload"`` (the legacy upload API: twine, devpi upload,
    ``setup.py upload``), ``"push"`` (copied from ``source``, another index of this server) or
    ``"toxresult"``. ``rel`` is ``"releasefile"``, ``"doczip"`` or ``"toxresult"``.
    ``metadata`` holds the release's core metadata as devpi stores it (``name``, ``version``,
    ``license``, ``license_expression``, ``classifiers``, ...): the upload form filled from the
    archive's METADATA/PKG-INFO, or the pushed version's metadata. ``size`` and ``sha256``
    describe the content when known (a push of a mirror file not fetched yet knows neither).
    """

    index: str
    project: str
    version: str
    filename: str
    rel: str
    action: str
    username: str | None
    metadata: Mapping[str, Any]
    size: int | None = None
    sha256: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class DeleteEvent:
    """A project, version or file was removed from an index (after the commit)."""

    index: str
    project: str
    version: str | None
    filename: str | None
    username: str | None
    serial: int


@dataclass(frozen=True)
class IndexEvent:
    """An index was created, modified or deleted (``action`` says which)."""

    index: str
    action: str
    config: Mapping[str, Any] | None
    username: str | None
    serial: int


@dataclass(frozen=True)
class MirrorRefreshEvent:
    """A mirror index fetched a project page from upstream (``changed`` when links differ)."""

    index: str
    project: str
    changed: bool
    upstream_serial: int | None


class UpstreamFile(NamedTuple):
    """One file on an upstream project page, as a mirror source read it.

    ``url`` is absolute and carries no credentials; ``hashes`` maps hashlib names to lowercase
    hex digests; ``core_metadata`` holds the hashes of ``<url>.metadata`` (PEP 658/714) when the
    upstream advertises it. A named tuple, so a page of a hundred thousand files is cheap to
    build and its JSON form is a list of rows.
    """

    filename: str
    url: str
    hashes: Mapping[str, str] = NO_HASHES
    requires_python: str | None = None
    yanked: bool | str = False
    core_metadata: Mapping[str, str] | None = None
    size: int | None = None
    upload_time: str | None = None


@dataclass(frozen=True)
class ProjectView:
    """What an index serves of one project, as a :class:`~devpi_core.interfaces.ServePolicy`
    sees it: the merged links over the index's bases, and which of the indexes serving them are
    mirrors (``Link.stage`` names the index of a link).

    .. versionadded:: 0.2
    """

    index: IndexRecord
    project: str
    links: Sequence[Link]
    mirrors: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ServeDecision:
    """A policy's answer for one project on one index.

    ``held`` maps each version the index must not serve to the message a client gets for it
    (naming the rule, and for a waiting period when it ends). Pages leave held versions out and
    their files, under every URL, answer 403 with the message.

    .. versionadded:: 0.2
    """

    held: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class UpstreamPage:
    """What an upstream answered for one project page.

    ``status`` is ``"ok"`` (``files`` hold the page), ``"not_modified"`` (the ETag sent still
    matches) or ``"not_found"``. ``serial`` is the upstream's ``X-PyPI-Last-Serial`` (None if it
    sent none). ``project_status`` is the page's PEP 792 marker (None: the page has none).
    """

    status: str
    files: tuple[UpstreamFile, ...] = ()
    serial: int | None = None
    etag: str | None = None
    project_status: ProjectStatus | None = None


@dataclass
class UpstreamNames:
    """An upstream's project list: ``names`` streams normalized names (None: not modified)."""

    names: Iterator[str] | None
    etag: str | None = None


@dataclass
class UpstreamStream:
    """A file being read from an upstream; ``close`` releases the connection."""

    chunks: Iterator[bytes]
    size: int | None
    content_type: str | None = None
    last_modified: float | None = None
    close: Callable[[], None] = lambda: None
