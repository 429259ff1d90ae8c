"""The ``group`` index type: no releases of its own, only those of its bases.

devpi-core does the HTTP work for every index type (simple pages in HTML and JSON, merging over
``bases``, ETags, file serving); an index type only answers what the index itself holds. A group
holds nothing, so every answer is empty, and core serves the merged pages of the bases. Uploads
need an index type that stores files (``stage``), so a group refuses them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devpi_core.indextypes import FileRef, IndexType

if TYPE_CHECKING:
    from collections.abc import Hashable, Iterable, Mapping, Sequence

    from devpi_core.records import Link


class GroupIndex(IndexType):
    """Serves one group index (core builds one per index and configuration)."""

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
