"""The ``constrained`` index type: its bases' projects, filtered by its constraints.

Core leaves the bases of this type to it: it names no ``bases()`` and keeps the default
resolution order (the index alone), so every page, project list, version and file of its bases
reaches clients through the methods below. They read the bases through the public ``Indexes``
service (records, index type objects) and reuse the bases' own rules by composition: each
base's type gives its resolution order, and the first base's type says which indexes contribute
a project (a stage applies ``mirror_whitelist`` exactly as for itself). File links are rewritten
into this index (``<this index>/+f/...``), so downloads come here and are checked too.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from devpi_core import services
from devpi_core.errors import Forbidden
from devpi_core.indextypes import FileRef, IndexType, merge_links, verdata_links
from devpi_core_constrained.constraints import Constraints, version_of

if TYPE_CHECKING:
    from collections.abc import Hashable, Iterator, Mapping, Sequence

    from devpi_core.indextypes import FileStream, IndexEnv
    from devpi_core.model.indexes import Indexes
    from devpi_core.records import IndexRecord, Link

METADATA = ".metadata"


class ConstrainedIndex(IndexType):
    """Serves the merged projects of ``bases``, only in the versions ``constraints`` allow.

    Its bases are read with the constrained index's own read permission: whoever may read it
    sees what its owner chose to serve from them. Uploads go nowhere (no files of its own).
    """

    def __init__(self, env: IndexEnv, record: IndexRecord) -> None:
        super().__init__(env, record)
        self.constraints = Constraints.parse(record.config.get("constraints"))

    # -- the bases -----------------------------------------------------------------------
    @property
    def indexes(self) -> Indexes:
        return services.indexes(self.env.services)

    def order(self) -> list[IndexRecord]:
        """The resolution orders of the bases (as their types answer), each index once,
        mirrors last.

        Left out: this index, and an index that reads its bases itself and has this one among
        them at any depth (two constrained indexes based on each other would ask each other
        forever; each serves the rest of its bases).
        """
        indexes = self.indexes
        seen = {self.name}
        private: list[IndexRecord] = []
        mirrors: list[IndexRecord] = []
        for name in self.record.config.get("bases", ()):
            base = indexes.get(name)
            if base is None:
                continue
            for record in indexes.resolution_order(base):
                if record.fullname in seen or self._leads_back(record):
                    continue
                seen.add(record.fullname)
                (mirrors if indexes.is_mirror(record) else private).append(record)
        return private + mirrors

    def _leads_back(self, record: IndexRecord) -> bool:
        """Whether ``record`` reads its bases itself and this index is among them."""
        if self.indexes.spec(record) is None or self.indexes.type_of(record).bases():
            return False  # unknown, or core walks its bases (a stage's are in the order)
        seen: set[str] = set()
        queue = list(record.config.get("bases", ()))
        while queue:
            name = queue.pop(0)
            if name == self.name:
                return True
            if name not in seen:
                seen.add(name)
                found = self.indexes.get(name)
                queue.extend(found.config.get("bases", ()) if found is not None else ())
        return False

    def _contributors(
        self, project: str, order: list[IndexRecord]
    ) -> tuple[list[IndexRecord], tuple[Hashable, ...]]:
        """The bases whose links make up ``project``'s page, and their page tokens."""
        if self.constraints.excludes(project) or not order:
            return [], ()
        found = self.indexes.type_of(order[0]).contributors(order, project)
        return list(found.stages), found.tokens

    def _own(self, relpath: str) -> str:
        """``base-user/base-index/+f/...`` -> ``<this index>/+f/...``."""
        return f"{self.name}/{relpath.split('/', 2)[2]}"

    def _base_file(self, relpath: str) -> tuple[IndexType, FileRef] | None:
        """The base serving ``<this index>/<rest>`` as ``<base>/<rest>``, and its file."""
        prefix = f"{self.name}/"
        if not relpath.startswith(prefix):
            return None
        rest = relpath[len(prefix):]
        order = self.order()
        for record in order:
            itype = self.indexes.type_of(record)
            ref = itype.get_file(f"{record.fullname}/{rest}")
            if ref is not None:
                return itype, ref
        return None

    # -- simple pages --------------------------------------------------------------------
    def project_names(self) -> Iterator[str]:
        seen: set[str] = set()
        for record in self.order():
            for name in self.indexes.type_of(record).project_names():
                if name not in seen:
                    seen.add(name)
                    if not self.constraints.excludes(name):
                        yield name

    def names_token(self) -> Hashable | None:
        order = self.order()
        tokens = [self.indexes.type_of(record).names_token() for record in order]
        if any(token is None for token in tokens):
            return None
        return tuple((record.fullname, record.serial) for record in order), tuple(tokens)

    def has_project(self, project: str) -> bool:
        if self.constraints.excludes(project):
            return False
        # a mirror may have a project it has not been asked about yet (no network I/O here)
        order = self.order()
        return any(
            self.indexes.is_mirror(record) or self.indexes.type_of(record).has_project(project)
            for record in order
        )

    def page_token(self, project: str) -> Hashable | None:
        order = self.order()
        stages, tokens = self._contributors(project, order)
        if not stages:
            return None
        serials = tuple((record.fullname, record.serial) for record in order)
        return serials, tuple(record.fullname for record in stages), tokens

    def fresh_until(self, project: str) -> float:
        order = self.order()
        until = [self.indexes.type_of(record).fresh_until(project) for record in order]
        return min(until, default=float("inf"))

    def page_warning(self, project: str) -> str | None:
        order = self.order()
        for record in order:
            warning = self.indexes.type_of(record).page_warning(project)
            if warning is not None:
                return warning
        return None

    def links(self, project: str) -> Sequence[Link]:
        order = self.order()
        stages, _tokens = self._contributors(project, order)
        parts = [self.indexes.type_of(record).links(project) for record in stages]
        return [
            link._replace(relpath=self._own(link.relpath))
            for link in merge_links(parts)
            if self.constraints.allows(project, link.version or version_of(link.filename))
        ]

    # -- project and version JSON --------------------------------------------------------
    def versions(self, project: str) -> Mapping[str, Mapping[str, Any]]:
        result: dict[str, Mapping[str, Any]] = {}
        order = self.order()
        stages, _tokens = self._contributors(project, order)
        for record in stages:
            for version, verdata in self.indexes.type_of(record).versions(project).items():
                if version not in result and self.constraints.allows(project, version):
                    result[version] = self._own_verdata(verdata)
        return result

    def _own_verdata(self, verdata: Mapping[str, Any]) -> Mapping[str, Any]:
        links = [
            {**link, "relpath": self._own(link["relpath"])} if "relpath" in link else link
            for link in verdata_links(verdata)
        ]
        return {**verdata, "+links": links} if "+links" in verdata else verdata

    # -- files ---------------------------------------------------------------------------
    def get_file(self, relpath: str) -> FileRef | None:
        found = self._base_file(relpath)
        if found is None:
            return None
        _itype, ref = found
        version = ref.version or version_of(ref.filename.removesuffix(METADATA))
        if not self.constraints.allows(ref.project, version):
            raise Forbidden(
                f"{ref.filename} is not served by {self.name}: "
                f"excluded by its constraint {self.constraints.describe(ref.project)}"
            )
        return dataclasses.replace(ref, relpath=relpath)

    def open_uncached(self, ref: FileRef) -> FileStream | None:
        found = self._base_file(ref.relpath)
        if found is None:
            return None
        itype, base_ref = found
        return itype.open_uncached(base_ref)

    def refresh(self, project: str) -> None:
        order = self.order()
        for record in order:
            if self.indexes.is_mirror(record):
                self.indexes.type_of(record).refresh(project)
