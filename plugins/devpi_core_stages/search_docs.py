"""The stages' search documents (:mod:`devpi_core.search`): what a project's newest version says.

A stage rewrites a project's document in every write that changes its versions
(:meth:`StageIndex.refresh_search <devpi_core_stages.stage.StageIndex.refresh_search>`);
:func:`build_missing` writes them once for data stored before documents existed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devpi_core import search
from devpi_core.model.names import version_sort_key
from devpi_core_stages import layout

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from devpi_core.interfaces import MetadataStore

BUILT_KEY = "stages:search-documents"
BUILT_VERSION = 1


def latest_metadata(records: Iterable[tuple[str, Mapping[str, Any]]]) -> Mapping[str, Any] | None:
    """The metadata of the newest version that is not yanked (the newest yanked if all are);
    None without versions."""
    found = list(records)
    if not found:
        return None
    current = [item for item in found if not item[1].get("yanked")] or found
    return max(current, key=lambda item: version_sort_key(item[0]))[1].get("metadata") or {}


def build_missing(store: MetadataStore) -> int:
    """Write the document of every stage project (once per store); the number written."""
    with store.read() as tx:
        if tx.get(BUILT_KEY) == BUILT_VERSION:
            return 0
        stages = [key[len("index:"):] for key, config in tx.items("index:")
                  if config.get("type", "stage") == "stage"]
    if not stages:
        return 0  # nothing to build yet: a new server's first start writes nothing
    written = 0
    with store.write() as tx:
        for index in stages:
            versions: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
            start = len(layout.prefix(index)) + 2  # after "v:"
            for vkey, value in tx.items(layout.prefix(index) + "v:"):
                project, _, version = vkey[start:].partition(":")
                versions.setdefault(project, []).append((version, value))
            for project, records in versions.items():
                metadata = latest_metadata(records)
                if metadata is not None:
                    search.put(tx, index, project, metadata)
                    written += 1
        tx.set(BUILT_KEY, BUILT_VERSION)
    return written
