"""Mirrored files read from a dump (``devpi-core import --include-mirrored-files``), written
into the mirror's own cache layout, and the cached files listed for ``export``.

An imported project gets a cached page of the imported files (``p:``), a freshness record that
is already stale (``s:`` fetched at time 0), so the next request revalidates with the upstream
and, while the upstream cannot be reached, serves the imported page (stale-if-error); and one
``f:`` record per file with its blob reference, so the files are served from the cache without
any upstream contact.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from devpi_core.errors import BadRequest
from devpi_core.model.blobrefs import add_ref
from devpi_core.records import UpstreamFile
from devpi_core_mirror import layout

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from devpi_core.indextypes import RestoredFile
    from devpi_core.interfaces import BlobStore, ReadTransaction, WriteTransaction

RELEASE = "releasefile"


def _upstream_file(
    index: str, restored: RestoredFile, verdata: Mapping[str, Any]
) -> UpstreamFile:
    where = f"mirrored file {restored.filename}"
    if restored.rel != RELEASE:
        raise BadRequest(f"{where}: a mirror caches release files only, not {restored.rel}")
    if not restored.url:
        raise BadRequest(f"{where}: the dump gives no upstream url")
    yanked = verdata.get("yanked")
    return UpstreamFile(
        restored.filename,
        restored.url,
        {**restored.hashes, "sha256": restored.sha256},
        str(verdata["requires_python"]) if verdata.get("requires_python") else None,
        yanked if isinstance(yanked, (bool, str)) else False,
        None,
        restored.size,
        restored.upload_time,
    )


def restore_project(
    index: str,
    tx: WriteTransaction,
    project: str,
    *,
    versions: Mapping[str, Mapping[str, Any]],
    files: Sequence[RestoredFile],
    blobs: BlobStore,
) -> None:
    """Write the cached page, state and file records of ``project`` (see the module docstring);
    files already on a cached page of ``project`` are replaced, the others kept."""
    if not files:
        return  # a project the mirror knew but had no file of: nothing cached
    new = [_upstream_file(index, f, versions.get(f.version, {})) for f in files]
    names = {f.filename for f in new}
    old = layout.page_files(tx.get(layout.page_key(index, project)))
    rows = [f for f in old if f.filename not in names] + new
    for restored, f in zip(files, new, strict=True):
        add_ref(tx, blobs, restored.sha256, layout.blob_owner(index, f.filename),
                stored=True)
        tx.set(layout.file_key(index, f.filename), {
            "relpath": layout.relpath(index, f),
            "project": project,
            "version": restored.version,
            "url": f.url,
            "hashes": dict(f.hashes),
            "size": restored.size,
            "rel": RELEASE,
            "sha256": restored.sha256,
        })
    if not old:
        known = tx.get(layout.known_key(index)) or {}
        tx.set(layout.known_key(index), {"changes": int(known.get("changes", 0)) + 1})
    tx.set(layout.page_key(index, project), layout.page_record(rows))
    tx.set(layout.state_key(index, project), layout.state_record(None, None, 0.0, time.time_ns()))


def cached_records(index: str, tx: ReadTransaction) -> Iterator[dict[str, Any]]:
    """The ``f:`` records of the release files ``index`` holds (not their ``.metadata``)."""
    for _key, record in tx.items(layout.files_prefix(index)):
        if record.get("rel", RELEASE) == RELEASE:
            yield dict(record)
