"""The ``stage`` index type: what its owner uploads, served merged with its bases."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from devpi_core import search
from devpi_core.errors import Conflict, NotFound
from devpi_core.indextypes import FileRef, IndexType
from devpi_core.model.blobrefs import add_ref, drop_ref
from devpi_core.model.indexes import index_key
from devpi_core.model.names import version_sort_key
from devpi_core.records import Link, WithheldFile
from devpi_core_stages import filelog, layout, restore, rules
from devpi_core_stages.search_docs import latest_metadata

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence

    from devpi_core.indextypes import Contributors, RestoredFile
    from devpi_core.interfaces import ReadTransaction, WriteTransaction
    from devpi_core.records import IndexRecord, ProjectStatus

RELEASE = "releasefile"
DOCZIP = "doczip"
TOXRESULT = "toxresult"


def _touch(tx: WriteTransaction, key: str, name: str | None = None) -> None:
    record = dict(tx.get(key) or {})
    record["changes"] = int(record.get("changes", 0)) + 1
    if name is not None:
        record.setdefault("name", name)
    tx.set(key, record)


class StageIndex(IndexType):
    """Reads and writes one stage's projects, versions and files."""

    # -- reading ---------------------------------------------------------------------------
    def project_names(self) -> Iterable[str]:
        start = len(layout.projects_prefix(self.name))
        with self.env.store.read() as tx:
            return [key[start:] for key in tx.keys(layout.projects_prefix(self.name))]

    def names_token(self) -> Hashable | None:
        with self.env.store.read() as tx:
            return tx.key_serial(layout.names_key(self.name)) or 0

    def has_project(self, project: str) -> bool:
        with self.env.store.read() as tx:
            return tx.key_serial(layout.project_key(self.name, project)) is not None

    def page_token(self, project: str) -> Hashable | None:
        with self.env.store.read() as tx:
            return tx.key_serial(layout.project_key(self.name, project))

    def project_status(self, project: str) -> ProjectStatus | None:
        with self.env.store.read() as tx:
            return layout.read_status(tx.get(layout.project_key(self.name, project)))

    def set_project_status(
        self, project: str, status: ProjectStatus, *, username: str | None
    ) -> None:
        with self.env.store.write() as tx:
            key = layout.project_key(self.name, project)
            record = tx.get(key)
            if record is None:
                raise NotFound(f"no project {project!r} on {self.name}")
            changed = {k: v for k, v in record.items() if k != "status"}
            if status.status != "active" or status.reason:
                changed["status"] = {
                    "status": status.status,
                    "reason": status.reason,
                    "by": username,
                }
            tx.set(key, changed)
            _touch(tx, key)

    def _require_uploads(self, tx: ReadTransaction, project: str) -> None:
        """409 when the project's PEP 792 status refuses uploads (archived, quarantined)."""
        status = layout.read_status(tx.get(layout.project_key(self.name, project)))
        if status is not None and status.refuses_uploads:
            raise Conflict(f"{status.message(project)} on {self.name}: uploads are refused")

    def _version_records(
        self, tx: ReadTransaction, project: str
    ) -> list[tuple[str, dict[str, Any]]]:
        start = len(layout.versions_prefix(self.name, project))
        found = [
            (key[start:], value)
            for key, value in tx.items(layout.versions_prefix(self.name, project))
        ]
        found.sort(key=lambda item: version_sort_key(item[0]))
        return found

    def links(self, project: str) -> Sequence[Link]:
        with self.env.store.read() as tx:
            records = self._version_records(tx, project)
        links = []
        for version, record in records:
            yanked = record.get("yanked", False)
            for filename, rec in sorted(record.get("files", {}).items()):
                if rec["rel"] != RELEASE:
                    continue
                links.append(
                    Link(
                        filename=filename,
                        relpath=rec["relpath"],
                        hashes=rec["hashes"],
                        requires_python=rec.get("requires_python") or None,
                        yanked=yanked,
                        core_metadata=rec.get("core_metadata"),
                        size=rec.get("size"),
                        upload_time=rec.get("upload_time"),
                        version=version,
                    )
                )
        return links

    def versions(self, project: str) -> Mapping[str, Mapping[str, Any]]:
        with self.env.store.read() as tx:
            records = self._version_records(tx, project)
        return {version: self._verdata(record) for version, record in records}

    def version(self, project: str, version: str) -> Mapping[str, Any] | None:
        record = self.version_record(project, version)
        return self._verdata(record) if record is not None else None

    def version_record(self, project: str, version: str) -> dict[str, Any] | None:
        """The stored record of one version (metadata, files, yanked)."""
        with self.env.store.read() as tx:
            record = tx.get(layout.version_key(self.name, project, version))
        return dict(record) if record is not None else None

    def _verdata(self, record: Mapping[str, Any]) -> dict[str, Any]:
        verdata = dict(record.get("metadata", {}))
        if record.get("yanked", False) is not False:
            verdata["yanked"] = record["yanked"]
        links = []
        for rec in record.get("files", {}).values():
            link = {
                "rel": rec["rel"],
                "relpath": rec["relpath"],
                "hash_spec": f"sha256={rec['sha256']}",
                "hashes": rec["hashes"],
                "log": rec.get("log", []),
            }
            if rec.get("for_relpath"):
                link["for_relpath"] = rec["for_relpath"]
            links.append(link)
        verdata["+links"] = links
        return verdata

    def get_file(self, relpath: str) -> FileRef | None:
        ref = self._find_file(relpath)
        if ref is None:
            return None
        status = self.project_status(ref.project)
        if status is None or not status.serves_no_files:
            return ref
        return replace(ref, withheld=f"{ref.filename} is not served: {status.message(ref.project)}")

    def _find_file(self, relpath: str) -> FileRef | None:
        filename = relpath.rsplit("/", 1)[-1]
        metadata_of = filename[: -len(".metadata")] if filename.endswith(".metadata") else None
        with self.env.store.read() as tx:
            where = tx.get(layout.file_key(self.name, metadata_of or filename))
            if where is None:
                return None
            record = tx.get(layout.version_key(self.name, where[0], where[1])) or {}
        rec = record.get("files", {}).get(metadata_of or filename)
        if rec is None:
            return None
        if metadata_of is not None:
            core = rec.get("core_metadata")
            if not core or relpath != rec["relpath"] + ".metadata":
                return None
            return FileRef(
                relpath,
                filename,
                where[0],
                where[1],
                core["sha256"],
                dict(core),
                meta={"hash_spec": f"sha256={core['sha256']}"},
                rel="metadata",
                last_modified=rec.get("last_modified"),
            )
        if relpath != rec["relpath"]:
            return None
        meta = {
            "hash_spec": f"sha256={rec['sha256']}",
            "hashes": rec["hashes"],
            "last_modified": rec.get("upload_time"),
            "project": where[0],
            "version": where[1],
            "size": rec.get("size"),
        }
        return FileRef(
            relpath,
            filename,
            where[0],
            where[1],
            rec["sha256"],
            rec["hashes"],
            size=rec.get("size"),
            last_modified=rec.get("last_modified"),
            meta=meta,
            rel=rec["rel"],
        )

    # -- rules -----------------------------------------------------------------------------
    def bases(self) -> Sequence[str]:
        return tuple(self.record.config.get("bases", ()))

    def resolution_order(
        self, can_read: Callable[[IndexRecord], bool] | None = None
    ) -> Sequence[IndexRecord]:
        return rules.resolution_order(rules.indexes_of(self.env), self.record, can_read)

    def contributors(self, order: Sequence[IndexRecord], project: str) -> Contributors:
        return rules.whitelist_contributors(rules.indexes_of(self.env), order, project)

    def allows(self, permission: str, principals: frozenset[str]) -> bool:
        return rules.allows(self.record.config, permission, principals)

    def may_delete(self, *, force: bool = False) -> bool:
        return rules.may_delete(self.record.config, force=force)

    def withheld_files(self) -> Iterator[WithheldFile]:
        with self.env.store.read() as tx:
            start = len(layout.projects_prefix(self.name))
            found = []
            for key, value in tx.items(layout.projects_prefix(self.name)):
                status = layout.read_status(value)
                if status is not None and status.serves_no_files:
                    project = key[start:]
                    for _version, record in self._version_records(tx, project):
                        found += [
                            WithheldFile(
                                self.name, project, name, rec["sha256"], status.message(project)
                            )
                            for name, rec in sorted(record.get("files", {}).items())
                        ]
        return iter(found)

    # -- writing ---------------------------------------------------------------------------
    def set_metadata(
        self,
        tx: WriteTransaction,
        project: str,
        version: str,
        metadata: Mapping[str, Any],
        *,
        display_name: str,
        replace: bool = False,
    ) -> None:
        """Create or update a version's metadata (keeps its files); ``replace`` drops the old.

        Raises 409 when the project is archived or quarantined."""
        self._live_config(tx)
        self._require_uploads(tx, project)
        key = layout.version_key(self.name, project, version)
        record = dict(tx.get(key) or {"metadata": {}, "files": {}})
        old = {} if replace else record.get("metadata", {})
        record["metadata"] = {**old, **metadata}
        tx.set(key, record)
        if tx.get(layout.project_key(self.name, project)) is None:
            _touch(tx, layout.names_key(self.name))
        _touch(tx, layout.project_key(self.name, project), display_name)
        self.refresh_search(tx, project)

    def add_file(
        self,
        tx: WriteTransaction,
        project: str,
        version: str,
        rec: dict[str, Any],
    ) -> bool:
        """Store a file record; False if an identical file was there (non-volatile no-op).

        Raises 409 for different content under an existing name on a non-volatile index.
        """
        filename = rec["filename"]
        volatile = self._live_config(tx).get("volatile") is not False
        self._require_uploads(tx, project)
        where = tx.get(layout.file_key(self.name, filename))
        if where is not None and (where[0], where[1]) != (project, version):
            old_record = tx.get(layout.version_key(self.name, where[0], where[1])) or {}
            old = old_record.get("files", {}).get(filename)
            if old is not None and not volatile:
                raise Conflict(f"{filename} already exists in non-volatile index")
            self._remove_file(tx, where[0], where[1], filename)
        key = layout.version_key(self.name, project, version)
        record = dict(tx.get(key) or {"metadata": {}, "files": {}})
        files = dict(record.get("files", {}))
        old = files.get(filename)
        if old is not None:
            if not volatile:
                if old["sha256"] == rec["sha256"]:
                    return False
                raise Conflict(f"{filename} already exists in non-volatile index")
            # devpi: the replaced file's log goes with it and the new one starts with
            # "overwrite", the same content uploaded again too
            rec["log"] = [filelog.overwrite(old.get("log", ())), *rec.get("log", [])]
            if old["sha256"] != rec["sha256"]:
                drop_ref(
                    tx,
                    self.env.blobs,
                    old["sha256"],
                    f"{self.name}/{filename}",
                    store=self.env.store,
                )
            # A rebuilt wheel often has the same METADATA: dropping that ref here would delete
            # the blob after commit although the new record below refers to it again.
            old_core = (old.get("core_metadata") or {}).get("sha256")
            if old_core != (rec.get("core_metadata") or {}).get("sha256"):
                self._drop_metadata_ref(tx, old, filename)
        add_ref(tx, self.env.blobs, rec["sha256"], f"{self.name}/{filename}")
        if rec.get("core_metadata"):
            add_ref(
                tx,
                self.env.blobs,
                rec["core_metadata"]["sha256"],
                f"{self.name}/{filename}.metadata",
            )
        files[filename] = rec
        record["files"] = files
        tx.set(key, record)
        tx.set(layout.file_key(self.name, filename), [project, version])
        _touch(tx, layout.project_key(self.name, project))
        return True

    def refresh_search(self, tx: WriteTransaction, project: str) -> None:
        """Rewrite the project's search document from its newest version (in ``tx``, so the
        search index changes with the data); drop it when the project has no version left."""
        start = len(layout.versions_prefix(self.name, project))
        records = ((key[start:], value)
                   for key, value in tx.items(layout.versions_prefix(self.name, project)))
        metadata = latest_metadata(records)
        if metadata is None:
            search.drop(tx, self.name, project)
        else:
            search.put(tx, self.name, project, metadata)

    def _live_config(self, tx: ReadTransaction) -> Mapping[str, Any]:
        """The index configuration as of ``tx``: a write racing with a PATCH or a deletion of
        the index sees the committed state, never a cached one."""
        config = tx.get(index_key(self.name))
        if config is None:
            raise NotFound(f"index {self.name} was deleted")
        return dict(config)

    def _drop_metadata_ref(
        self, tx: WriteTransaction, rec: Mapping[str, Any], filename: str
    ) -> None:
        if rec.get("core_metadata"):
            drop_ref(
                tx,
                self.env.blobs,
                rec["core_metadata"]["sha256"],
                f"{self.name}/{filename}.metadata",
                store=self.env.store,
            )

    def _remove_file(self, tx: WriteTransaction, project: str, version: str, filename: str) -> None:
        key = layout.version_key(self.name, project, version)
        record = dict(tx.get(key) or {})
        files = dict(record.get("files", {}))
        rec = files.pop(filename, None)
        if rec is None:
            return
        drop_ref(tx, self.env.blobs, rec["sha256"], f"{self.name}/{filename}", store=self.env.store)
        self._drop_metadata_ref(tx, rec, filename)
        tx.delete(layout.file_key(self.name, filename))
        # tox results belong to the release file they were made for
        for other, other_rec in list(files.items()):
            if other_rec.get("for_relpath") == rec["relpath"]:
                files.pop(other)
                drop_ref(
                    tx,
                    self.env.blobs,
                    other_rec["sha256"],
                    f"{self.name}/{other}",
                    store=self.env.store,
                )
                tx.delete(layout.file_key(self.name, other))
        record["files"] = files
        tx.set(key, record)
        _touch(tx, layout.project_key(self.name, project))

    def set_yanked(self, project: str, version: str, yanked: bool | str) -> None:
        """Yank (PEP 592) or un-yank a version."""
        with self.env.store.write() as tx:
            key = layout.version_key(self.name, project, version)
            record = tx.get(key)
            if record is None:
                raise NotFound(f"no version {version!r} of {project!r} on {self.name}")
            tx.set(key, {**record, "yanked": yanked})
            _touch(tx, layout.project_key(self.name, project))
            self.refresh_search(tx, project)

    # -- deleting --------------------------------------------------------------------------
    def _delete_version_in(self, tx: WriteTransaction, project: str, version: str) -> None:
        record = tx.get(layout.version_key(self.name, project, version)) or {}
        for filename in list(record.get("files", {})):
            self._remove_file(tx, project, version, filename)
        tx.delete(layout.version_key(self.name, project, version))
        if next(tx.keys(layout.versions_prefix(self.name, project)), None) is None:
            tx.delete(layout.project_key(self.name, project))
            _touch(tx, layout.names_key(self.name))
        else:
            _touch(tx, layout.project_key(self.name, project))
        self.refresh_search(tx, project)

    def delete_project(self, project: str, *, username: str | None) -> None:
        with self.env.store.write() as tx:
            start = len(layout.versions_prefix(self.name, project))
            for key in list(tx.keys(layout.versions_prefix(self.name, project))):
                self._delete_version_in(tx, project, key[start:])
            if tx.get(layout.project_key(self.name, project)) is not None:
                tx.delete(layout.project_key(self.name, project))
                _touch(tx, layout.names_key(self.name))
            search.drop(tx, self.name, project)

    def delete_version(self, project: str, version: str, *, username: str | None) -> None:
        with self.env.store.write() as tx:
            if tx.get(layout.version_key(self.name, project, version)) is None:
                raise NotFound(f"no version {version!r} of {project!r} on {self.name}")
            self._delete_version_in(tx, project, version)

    def delete_file(self, ref: FileRef, *, username: str | None) -> None:
        if ref.version is None or ref.rel == "metadata":
            raise NotFound(f"{ref.relpath} cannot be deleted on its own")
        with self.env.store.write() as tx:
            self._remove_file(tx, ref.project, ref.version, ref.filename)
            record = tx.get(layout.version_key(self.name, ref.project, ref.version)) or {}
            if not any(r["rel"] == RELEASE for r in record.get("files", {}).values()):
                self._delete_version_in(tx, ref.project, ref.version)

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
            self, tx, project, display_name=display_name, versions=versions, files=files
        )
        self.refresh_search(tx, project)

    def delete_all(self, tx: WriteTransaction) -> None:
        for key, value in list(tx.items(layout.prefix(self.name))):
            if key.startswith(f"stage:{self.name}:v:"):
                for filename, rec in value.get("files", {}).items():
                    drop_ref(
                        tx,
                        self.env.blobs,
                        rec["sha256"],
                        f"{self.name}/{filename}",
                        store=self.env.store,
                    )
                    self._drop_metadata_ref(tx, rec, filename)
            tx.delete(key)
        search.drop_scope(tx, self.name)
