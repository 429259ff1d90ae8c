"""The ``log`` of a stored file (``+links[].log``): devpi-server's entries, in its order.

devpi-server writes ``{"what", "who", "when"}`` plus what the action names: ``upload``
``{"dst"}``, ``push`` ``{"src", "dst"}``, and ``overwrite`` ``{"count"}`` (with ``who`` None).
A file that replaces another of the same name (a volatile index) starts a new log whose first
entry is ``overwrite``, counting every replacement so far; the replaced file's entries go with
it. A push copies the source file's entries (without its ``overwrite`` ones for release files
and tox results, all of them for documentation) and adds ``push``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

DOCZIP = "doczip"


def entry(what: str, who: str | None, **extra: Any) -> dict[str, Any]:
    """One entry: what happened, who did it, when (UTC, a list of 6 ints), and ``extra``."""
    return {"what": what, "who": who, "when": list(time.gmtime()[:6]), **extra}


def upload(who: str | None, dst: str) -> dict[str, Any]:
    """A file uploaded to ``dst``."""
    return entry("upload", who, dst=dst)


def push(who: str | None, src: str, dst: str) -> dict[str, Any]:
    """A file pushed from ``src`` to ``dst``."""
    return entry("push", who, src=src, dst=dst)


def overwrite(replaced: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The first entry of a file replacing one whose log was ``replaced``."""
    count = sum(int(e.get("count") or 0) for e in replaced if e.get("what") == "overwrite")
    return entry("overwrite", None, count=count + 1)


def carried(log: Iterable[Mapping[str, Any]], rel: str) -> list[dict[str, Any]]:
    """The entries a push copies from the source file's log."""
    return [dict(e) for e in log if rel == DOCZIP or e.get("what") != "overwrite"]
