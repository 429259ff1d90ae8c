"""Where a stage keeps its data in the metadata store (all keys under ``stage:<user>/<index>:``).

``p:<project>``            ``{"name": display name, "changes": n, "status": {"status", "reason",
                           "by"}}``; rewritten on every change of the project, so its key serial
                           is the project page's token; ``status`` is its PEP 792 status
                           (absent: active)
``v:<project>:<version>``  ``{"metadata": {...}, "files": {filename: file record}, "yanked": ...}``
``f:<filename>``           ``[project, version]``: finds a file from its URL
``names``                  ``{"changes": n}``: rewritten whenever a project appears or disappears
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devpi_core.model import relpaths
from devpi_core.records import ProjectStatus

if TYPE_CHECKING:
    from collections.abc import Mapping


def prefix(index: str) -> str:
    """Every key of index ``user/name``."""
    return f"stage:{index}:"


def project_key(index: str, project: str) -> str:
    """The project record."""
    return f"stage:{index}:p:{project}"


def projects_prefix(index: str) -> str:
    """All project records of an index."""
    return f"stage:{index}:p:"


def version_key(index: str, project: str, version: str) -> str:
    """One version's record."""
    return f"stage:{index}:v:{project}:{version}"


def versions_prefix(index: str, project: str) -> str:
    """All version records of a project (``:`` cannot occur in project names)."""
    return f"stage:{index}:v:{project}:"


def file_key(index: str, filename: str) -> str:
    """The filename lookup entry."""
    return f"stage:{index}:f:{filename}"


def names_key(index: str) -> str:
    """Changes whenever the set of projects changes."""
    return f"stage:{index}:names"


def hashdir_relpath(index: str, sha256: str, filename: str) -> str:
    """devpi's file URL path: ``user/index/+f/<3 hex>/<13 hex>/<filename>``."""
    return relpaths.hashdir_relpath(index, sha256, filename)


def read_status(record: Mapping[str, Any] | None) -> ProjectStatus | None:
    """The PEP 792 status of a ``p:`` record (None: active, or no such project)."""
    found = record.get("status") if record else None
    if not isinstance(found, dict):
        return None
    return ProjectStatus(str(found.get("status")), found.get("reason"))
