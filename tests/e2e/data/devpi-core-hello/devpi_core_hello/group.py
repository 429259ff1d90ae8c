"""The ``group`` index type: no releases of its own, only those of its bases.

devpi-core does the HTTP work for every index type (simple pages in HTML and JSON, merging the
indexes a type names, ETags, file serving); an index type answers what the index itself holds,
and the questions of its rules. A group holds nothing, so every answer about its data is empty.
For its rules it reuses those of a stage by composition, through the public API: a stage over
the group's own configuration answers which indexes make up its pages (its ``bases``,
breadth-first, mirrors last) and which of them contribute a project (``mirror_whitelist``).
Uploads need an index type that stores files (``stage``), so a group refuses them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devpi_core import services
from devpi_core.indextypes import FileRef, IndexType

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence

    from devpi_core.indextypes import Contributors, IndexEnv
    from devpi_core.records import IndexRecord, Link


class GroupIndex(IndexType):
    """Serves one group index (core builds one per index and configuration)."""

    def __init__(self, env: IndexEnv, record: IndexRecord) -> None:
        super().__init__(env, record)
        stage = services.indexes(env.services).types.get("stage")
        # without the stages plugin a group keeps the defaults: it serves nothing of its bases
        self.rules = stage.factory(env, record) if stage is not None else None

    # -- the rules: a stage's ------------------------------------------------------------
    def bases(self) -> Sequence[str]:
        return self.rules.bases() if self.rules else ()

    def resolution_order(
        self, can_read: Callable[[IndexRecord], bool] | None = None
    ) -> Sequence[IndexRecord]:
        return self.rules.resolution_order(can_read) if self.rules else [self.record]

    def contributors(self, order: Sequence[IndexRecord], project: str) -> Contributors:
        if self.rules is None:
            return super().contributors(order, project)
        return self.rules.contributors(order, project)

    # -- the data: none ------------------------------------------------------------------
    def project_names(self) -> Iterable[str]:
        return ()

    def has_project(self, project: str) -> bool:
        return False

    def page_token(self, project: str) -> Hashable | None:
        return None  # "I do not know this project": the bases answer

    def names_token(self) -> Hashable | None:
        return ()  # never changes: lets core cache the merged project list

    def links(self, project: str) -> Sequence[Link]:
        return ()

    def versions(self, project: str) -> Mapping[str, Mapping[str, Any]]:
        return {}

    def get_file(self, relpath: str) -> FileRef | None:
        return None
