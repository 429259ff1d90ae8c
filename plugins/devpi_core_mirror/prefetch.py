"""Fetching the pages of a cached wheel's dependencies before the installer asks for them.

An installer that downloaded a wheel reads its metadata and then asks for the page of every
dependency, one after the other. When a mirror has stored a wheel (or its ``.metadata``), the
pages of the requirements that apply without extras are fetched on one background thread, so
the installer's next requests find them cached. Markers are evaluated for the server's own
environment; a wrong guess costs one page that nobody asks for. Only names published in public
upstream metadata are looked up, and only on the mirror that served the wheel: an index with a
private project of the same name still never serves it from the mirror.
"""

from __future__ import annotations

import functools
import logging
import zipfile
from email.parser import HeaderParser
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement

from devpi_core.errors import DevpiError
from devpi_core.model.names import normalize

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import BinaryIO

    from devpi_core_mirror.jobs import JobQueue
    from devpi_core_mirror.project_cache import ProjectPages

log = logging.getLogger(__name__)
MAX_METADATA = 1 << 20
MAX_QUEUED = 256


def requirement_names(metadata: str) -> list[str]:
    """Normalized names of the ``Requires-Dist`` entries that apply without extras."""
    names: dict[str, None] = {}
    for value in HeaderParser().parsestr(metadata).get_all("Requires-Dist") or ():
        try:
            requirement = Requirement(str(value))
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
        except (InvalidRequirement, ValueError, TypeError):
            continue
        names[normalize(requirement.name)] = None
    return list(names)


def wheel_metadata(handle: BinaryIO) -> str | None:
    """The ``*.dist-info/METADATA`` of a wheel, or None if there is not exactly one (small)."""
    try:
        with zipfile.ZipFile(handle) as wheel:
            found = [
                info
                for info in wheel.infolist()
                if info.filename.count("/") == 1 and info.filename.endswith(".dist-info/METADATA")
            ]
            if len(found) != 1 or found[0].file_size > MAX_METADATA:
                return None
            return wheel.read(found[0]).decode("utf-8", errors="replace")
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return None


def prefetch_requirements(
    queue: JobQueue, pages: ProjectPages, read: Callable[[], str | None]
) -> None:
    """A wheel or ``.metadata`` of ``pages``' index was stored; ``read()`` returns its metadata
    (called on the queue's thread, which then fetches the pages one by one)."""

    def queue_pages() -> None:
        metadata = read()
        for name in requirement_names(metadata) if metadata is not None else ():
            queue.submit(functools.partial(_fetch, pages, name))

    queue.submit(queue_pages)


def _fetch(pages: ProjectPages, name: str) -> None:
    if pages.closed or pages.env.offline or pages.is_known(name):
        return
    try:
        pages.token(name)
    except DevpiError as exc:  # the installer's own request will say what is wrong
        log.debug("%s: prefetching %s failed: %s", pages.index, name, exc)
