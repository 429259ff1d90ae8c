"""The ``mirror`` index type: a consistent, self-updating cache of an upstream index."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from itertools import repeat
from typing import TYPE_CHECKING, Any

from devpi_core.errors import Gone, NotFound, UpstreamUnavailable
from devpi_core.indextypes import FileRef, FileStream, IndexEnv, IndexType
from devpi_core.model.blobrefs import add_ref, drop_ref, has_refs
from devpi_core.model.names import project_candidates
from devpi_core.model.relpaths import hashdir_relpath
from devpi_core.records import (
    IndexRecord,
    Link,
    ProjectStatus,
    UpstreamFile,
    WithheldFile,
    hash_spec,
)
from devpi_core_mirror import layout, restore
from devpi_core_mirror.fills import STREAMING, VERIFIED, FileJob, Fill, FillEnv, FillLease
from devpi_core_mirror.leases import Lease
from devpi_core_mirror.pages import version_of, versions_of
from devpi_core_mirror.project_cache import file_records
from devpi_core_mirror.service import MirrorService

if TYPE_CHECKING:
    from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence

    from devpi_core.indextypes import RestoredFile
    from devpi_core.interfaces import ReadTransaction, WriteTransaction

METADATA = ".metadata"
FULL_SHA256 = 64


@dataclass(frozen=True)
class PageFileRef(FileRef):
    """A file found on a cached page, not downloaded yet. ``page_token`` names that page: the
    download's commit checks whether a page committed since still lists the file."""

    page_token: int | None = None


class MirrorIndex(IndexType):
    """Serves one mirror index; the state lives in :class:`MirrorService` and the store."""

    def __init__(self, env: IndexEnv, record: IndexRecord) -> None:
        super().__init__(env, record)
        self.service = env.services.get(MirrorService)
        self.rt = self.service.runtime(env, record)

    # -- simple pages ----------------------------------------------------------------------
    def project_names(self) -> Iterable[str]:
        return self.rt.names.names()

    def names_token(self) -> Hashable | None:
        return self.rt.names.token()

    def find_names(self, needle: str, limit: int) -> list[str]:
        return self.rt.names.find(needle, limit)

    def has_project(self, project: str) -> bool:
        return self.rt.pages.state(project).token is not None

    def page_token(self, project: str) -> Hashable | None:
        return self.rt.pages.token(project)

    def fresh_until(self, project: str) -> float:
        if self.env.offline:
            return float("inf")
        return self.rt.pages.state(project).fresh_until

    def page_warning(self, project: str) -> str | None:
        return self.rt.pages.warning(project)

    def project_status(self, project: str) -> ProjectStatus | None:
        return self.rt.pages.state(project).project_status

    def _quarantined(self, project: str) -> ProjectStatus | None:
        status = self.rt.pages.state(project).project_status
        return status if status is not None and status.serves_no_files else None

    def links(self, project: str) -> Sequence[Link]:
        if self._quarantined(project) is not None:
            return []
        page = self.rt.pages.page(project)
        links: list[Link] | None = page.derived.get(self.name)
        if links is None:  # built once per page version (HTML and JSON renders share them)
            links = page.derived[self.name] = self._links(project, page.files)
        if self.env.offline:
            links = [link for link in links if self._is_cached(link.filename, link.hashes)]
        return links

    def _links(self, project: str, files: Sequence[UpstreamFile]) -> list[Link]:
        """The links of a page, built column by column: the per-file work is a few list
        comprehensions, and the links themselves are made at C level (a page of the lock's
        91 projects lists 125,000 files; a Python call per link was a third of its render)."""
        if not files:
            return []
        filenames, _urls, hashes, requires, yanked, cores, sizes, times = zip(*files, strict=True)
        relpaths = [
            hashdir_relpath(self.name, sha, f.filename)
            if (sha := f.hashes.get("sha256"))
            else layout.relpath(self.name, f)
            for f in files
        ]
        core_links = [core if core and "sha256" in core else None for core in cores]
        rows = zip(
            filenames,
            relpaths,
            hashes,
            requires,
            yanked,
            core_links,
            sizes,
            times,
            versions_of(filenames, project),
            strict=True,
        )
        return list(map(tuple.__new__, repeat(Link), rows))

    def _cached_sha(self, filename: str, hashes: Mapping[str, str]) -> str | None:
        sha = _full_sha256(hashes)
        if sha is None:
            with self.env.store.read() as tx:
                value = tx.get(layout.file_key(self.name, filename))
            sha = value["sha256"] if value else None
        return sha

    def _referenced_sha(self, hashes: Mapping[str, str], tx: ReadTransaction) -> str | None:
        """The upstream's sha256 of a file this mirror has not recorded, if some index refers
        to a blob of that content (a reference always has its blob, so the metadata store
        answers and the blob store is not asked: a HEAD request each on an object store)."""
        sha = _full_sha256(hashes)
        return sha if sha is not None and has_refs(tx, sha) else None

    def _is_cached(self, filename: str, hashes: Mapping[str, str]) -> bool:
        sha = self._cached_sha(filename, hashes)
        return sha is not None and self.env.blobs.exists(sha)

    # -- project and version JSON ----------------------------------------------------------
    def versions(self, project: str) -> Mapping[str, Mapping[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        if self._quarantined(project) is not None:
            return result
        for f in self.rt.pages.page(project).files:
            version = version_of(f.filename, project)
            if version is None:
                continue
            verdata = result.setdefault(
                version, {"name": project, "version": version, "+links": []}
            )
            if f.requires_python:
                verdata.setdefault("requires_python", f.requires_python)
            if f.yanked is not False:
                verdata["yanked"] = f.yanked
            verdata["+links"].append(
                {
                    "rel": "releasefile",
                    "relpath": layout.relpath(self.name, f),
                    "hashes": dict(f.hashes),
                    "hash_spec": hash_spec(f.hashes),
                }
            )
        return result

    # -- files -----------------------------------------------------------------------------
    def get_file(self, relpath: str) -> FileRef | None:
        ref = self._find_file(relpath)
        if ref is None:
            self._refuse_if_quarantined(relpath)
            return None
        withheld = self._withheld(ref)
        return ref if withheld is None else replace(ref, withheld=withheld)

    def _refuse_if_quarantined(self, relpath: str) -> None:
        """A file of a quarantined project answers 410 even when it is not cached (or its
        record is still being written): the page no longer lists any of its files."""
        target = relpath.rsplit("/", 1)[-1].removesuffix(METADATA)
        for project in dict.fromkeys(project_candidates(target)):
            if project and self.rt.pages.is_known(project):
                status = self._quarantined(project)
                if status is not None:
                    raise Gone(_quarantine_message(target, project, status))

    def _withheld(self, ref: FileRef) -> str | None:
        """Why ``ref`` is not served any more (PEP 792 quarantine, removed upstream), or None."""
        status = self._quarantined(ref.project)
        if status is not None:
            return _quarantine_message(ref.filename, ref.project, status)
        if ref.meta.get("removed") and not self.record.config.get("mirror_keep_removed"):
            return (
                f"{ref.filename} was removed from the upstream index; "
                f"{self.name} no longer serves it"
            )
        return None

    def _find_file(self, relpath: str) -> FileRef | None:
        filename = relpath.rsplit("/", 1)[-1]
        with self.env.store.read() as tx:
            record = tx.get(layout.file_key(self.name, filename))
        if record is not None and record["relpath"] == relpath:  # cached before: no page lookup
            meta = {
                "hash_spec": hash_spec(record["hashes"]),
                "hashes": record["hashes"],
                "url": record["url"],
                "project": record["project"],
                "version": record["version"],
            }
            if record.get("removed"):
                meta["removed"] = record["removed"]
            return FileRef(
                relpath,
                filename,
                record["project"],
                record["version"],
                record["sha256"],
                record["hashes"],
                size=record["size"],
                meta=meta,
                rel=record["rel"],
            )
        target = filename.removesuffix(METADATA)
        candidates = [project for project in dict.fromkeys(project_candidates(target)) if project]
        # Another node sharing the store may have answered the page without having stored it
        # yet (pages are written behind the answer), and the installer asks this node for the
        # file: when no page of any candidate is known, ask the upstream as a page request would.
        fetch = not self.env.offline and not any(map(self.rt.pages.is_known, candidates))
        for project in candidates:
            if not self.rt.pages.is_known(project) and not (fetch and self._fetched(project)):
                continue
            # read before the lookup: a page changed in between makes the commit look again
            token = self.rt.pages.state(project).token
            f = self.rt.pages.find(project, target)
            if f is None:
                continue
            base = layout.relpath(self.name, f)
            if relpath == base:
                return self._file_ref(relpath, project, f, token)
            if relpath == base + METADATA and f.core_metadata:
                return self._metadata_ref(relpath, project, f, token)
            return None
        return None

    def _fetched(self, project: str) -> bool:
        """Whether the upstream has a page of ``project`` (fetched now if not fresh)."""
        try:
            return self.rt.pages.token(project) is not None
        except UpstreamUnavailable:
            return False

    def _file_ref(
        self, relpath: str, project: str, f: UpstreamFile, token: int | None
    ) -> PageFileRef:
        version = version_of(f.filename, project)
        meta = {
            "hash_spec": hash_spec(f.hashes),
            "hashes": dict(f.hashes),
            "url": f.url,
            "project": project,
            "version": version,
            "size": f.size,
        }
        return PageFileRef(
            relpath,
            f.filename,
            project,
            version,
            None,  # not recorded here: open_uncached finds content stored meanwhile
            dict(f.hashes),
            size=f.size,
            meta=meta,
            page_token=token,
        )

    def _metadata_ref(
        self, relpath: str, project: str, f: UpstreamFile, token: int | None
    ) -> PageFileRef:
        assert f.core_metadata is not None
        filename = f.filename + METADATA
        hashes = dict(f.core_metadata)
        version = version_of(f.filename, project)
        meta = {
            "hash_spec": hash_spec(hashes),
            "hashes": hashes,
            "url": f.url + METADATA,
            "project": project,
            "version": version,
        }
        return PageFileRef(
            relpath,
            filename,
            project,
            version,
            None,
            hashes,
            meta=meta,
            rel="metadata",
            page_token=token,
        )

    def open_uncached(self, ref: FileRef) -> FileStream | None:
        if self.env.offline:
            raise NotFound(f"{ref.filename} is not cached, and the server is in offline mode")
        url = str(ref.meta["url"])
        if self.record.config.get("mirror_use_external_urls"):
            return FileStream(iter(()), None, redirect=url)
        source = self.rt.require_source()
        settings = self.service.settings
        hashes = {k: v for k, v in ref.hashes.items() if k in hashlib.algorithms_available}
        job = FileJob(ref.relpath, url, ref.filename, hashes, ref.size)
        env = FillEnv(
            source, self.env.blobs, self.env.tmpdir, self.service.counters, self.service.fills.stop
        )
        shared = FillLease(
            Lease(
                self.env.store,
                f"fill:{self.name}:{ref.filename}",
                self.service.holder,
                settings.fill_lease_ttl,
            ),
            lambda: self._stored(ref),
            settings.fill_follow_wait,
        )
        # no look at the store first: the fill looks once it holds the lease (a process that
        # stored the file released it after its commit), one transaction fewer per cold file
        fill = self.service.fills.get(
            job, lambda j: Fill(j, env, lambda sha: self._committed(ref, sha), shared), None
        )
        assert fill is not None  # without a look first, get() always gives a fill
        counters = self.service.counters
        counters.add("waiting")
        try:
            # the fill times out first (following another process, then its own download)
            fill.wait(
                (STREAMING, VERIFIED), settings.fill_follow_wait + settings.file_timeout * 2 + 1
            )
        finally:
            counters.add("waiting", -1)
        small = fill.size is not None and fill.size <= settings.verify_before_send
        return fill.reader(self.env.blobs.open, settings.file_timeout, verified=small)

    def _stored(self, ref: FileRef) -> str | None:
        """The blob of ``ref`` if a fill (of any process) stored it since the view looked, or
        some index refers to that content (else None). Followers ask this every 50 ms: the
        metadata store answers, never the blob store (a reference always has its blob)."""
        with self.env.store.read() as tx:
            record = tx.get(layout.file_key(self.name, ref.filename))
            if record is not None and record["relpath"] == ref.relpath:
                return str(record["sha256"])
            sha256 = self._referenced_sha(ref.hashes, tx)
        if sha256 is not None:
            # stored for another index (an upload, another mirror): recorded here as if this
            # mirror had downloaded it, so the next request is served like any cached file
            self._committed(ref, sha256)
        return sha256

    def _committed(self, ref: FileRef, sha256: str) -> None:
        record = {
            "relpath": ref.relpath,
            "project": ref.project,
            "version": ref.version,
            "url": ref.meta["url"],
            "hashes": dict(ref.hashes),
            "size": ref.size,
            "rel": ref.rel,
            "sha256": sha256,
        }
        with self.env.store.write() as tx:
            if self._dropped_since(tx, ref):
                record["removed"] = round(time.time(), 3)
            add_ref(tx, self.env.blobs, sha256, layout.blob_owner(self.name, ref.filename))
            tx.set(layout.file_key(self.name, ref.filename), record)

    def _dropped_since(self, tx: ReadTransaction, ref: FileRef) -> bool:
        """Whether a page committed since ``ref`` was found no longer lists its file. That
        page's commit marked the records of the files it dropped (``Takedowns``), but a
        download records its file only once the client has it: without this look, a file
        removed upstream meanwhile would be recorded, and served, as a live one."""
        if not isinstance(ref, PageFileRef):
            return False
        token = self.rt.pages.stored_state(tx, ref.project)[3]
        if token is not None and token == ref.page_token:
            return False  # the page it was found on: one small read per download
        page = tx.get(layout.page_key(self.name, ref.project))
        return layout.find_file(page, ref.filename.removesuffix(METADATA)) is None

    def refresh(self, project: str) -> None:
        self.rt.pages.refresh(project)

    def withheld_files(self) -> Iterator[WithheldFile]:
        with self.env.store.read() as tx:
            records = list(tx.items(layout.files_prefix(self.name)))
        start = len(layout.files_prefix(self.name))
        for key, record in records:
            ref = self._find_file(record["relpath"])
            withheld = None if ref is None else self._withheld(ref)
            if withheld is not None:
                yield WithheldFile(
                    self.name, record["project"], key[start:], record["sha256"], withheld
                )

    # -- migration -------------------------------------------------------------------------
    def restore_project(
        self,
        tx: WriteTransaction,
        project: str,
        *,
        display_name: str,
        versions: Mapping[str, Mapping[str, Any]],
        files: Sequence[RestoredFile],
    ) -> None:
        restore.restore_project(
            self.name, tx, project, versions=versions, files=files, blobs=self.env.blobs
        )
        self.rt.pages.forget(project)

    def cached_files(self) -> Iterator[FileRef]:
        self.rt.pages.writes.flush()  # a download still being recorded
        with self.env.store.read() as tx:
            records = list(restore.cached_records(self.name, tx))
        for record in records:
            ref = self._find_file(record["relpath"])
            if ref is not None and ref.sha256 is not None and self.env.blobs.exists(ref.sha256):
                yield ref

    # -- deleting cached content -----------------------------------------------------------
    def may_delete(self, *, force: bool = False) -> bool:
        """A non-volatile mirror (root/pypi) keeps its cache unless ``?force``d, and stays."""
        return force or self.record.config.get("volatile") is not False

    def _uncache(self, tx: WriteTransaction, files: Iterable[UpstreamFile]) -> None:
        """Forget the cached ones of ``files`` (and their metadata files): only files this
        mirror recorded have references. A page lists thousands of files of which a few are
        cached; asking about each listed one (a blob-store HEAD and a database round trip on a
        cluster) made deleting a mirror of a 91-wheel lock take minutes."""
        start = len(layout.files_prefix(self.name))
        for key, record in file_records(tx, self.name, (f.filename for f in files)):
            owner = layout.blob_owner(self.name, key[start:])
            drop_ref(tx, self.env.blobs, record["sha256"], owner, store=self.env.store)
            tx.delete(key)

    def delete_project(self, project: str, *, username: str | None) -> None:
        self.rt.pages.writes.flush()  # a fetch still being stored would bring it back
        files = self.rt.pages.page(project).files
        with self.env.store.write() as tx:
            self._uncache(tx, files)
            tx.delete(layout.page_key(self.name, project))
            tx.delete(layout.state_key(self.name, project))
            known = tx.get(layout.known_key(self.name)) or {}
            tx.set(layout.known_key(self.name), {"changes": int(known.get("changes", 0)) + 1})
        self.rt.pages.forget(project)

    def delete_version(self, project: str, version: str, *, username: str | None) -> None:
        self.rt.pages.writes.flush()
        files = [
            f
            for f in self.rt.pages.page(project).files
            if version_of(f.filename, project) == version
        ]
        if not files:
            raise NotFound(f"no version {version!r} of {project!r} on {self.name}")
        with self.env.store.write() as tx:
            self._uncache(tx, files)

    def delete_file(self, ref: FileRef, *, username: str | None) -> None:
        f = self.rt.pages.page(ref.project).by_name.get(ref.filename.removesuffix(METADATA))
        if f is None:
            raise NotFound(f"no such file: {ref.relpath}")
        with self.env.store.write() as tx:
            self._uncache(tx, [f])

    def delete_all(self, tx: WriteTransaction) -> None:
        start = len(layout.files_prefix(self.name))
        for key, record in list(tx.items(layout.files_prefix(self.name))):
            owner = layout.blob_owner(self.name, key[start:])
            drop_ref(tx, self.env.blobs, record["sha256"], owner, store=self.env.store)
        start = len(layout.pages_prefix(self.name))
        for key in list(tx.keys(layout.pages_prefix(self.name))):
            self.rt.pages.forget(key[start:])
        names = tx.get(layout.names_key(self.name))
        if names:
            drop_ref(tx, self.env.blobs, names["sha256"], self.rt.names.owner, store=self.env.store)
        for key in list(tx.keys(layout.prefix(self.name))):
            tx.delete(key)
        tx.after_commit(lambda _serial: self.service.drop(self.name))


def _full_sha256(hashes: Mapping[str, str]) -> str | None:
    """The sha256 of a link's hashes, if whole (a link's short hash names no blob)."""
    sha = hashes.get("sha256")
    return sha if sha is not None and len(sha) == FULL_SHA256 else None


def _quarantine_message(filename: str, project: str, status: ProjectStatus) -> str:
    reason = f": {status.reason}" if status.reason else ""
    return f"{filename} is not served: the upstream index quarantined project {project!r}{reason}"
