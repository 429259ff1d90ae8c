"""A stage's rules: inheritance over ``bases``, ``mirror_whitelist``, ``acl_upload``, ``volatile``.

Core asks each index's type these questions (:class:`devpi_core.indextypes.IndexType`); a stage
answers them with devpi's semantics, through the functions below.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

from devpi_core import services
from devpi_core.indextypes import collect_contributors
from devpi_core.model.acl import normalize_acl_entry

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from devpi_core.indextypes import Contributors, IndexEnv, IndexType
    from devpi_core.model.indexes import Indexes
    from devpi_core.records import IndexRecord

log = logging.getLogger(__name__)

# the permission each ACL key of a stage grants (``del_entry``: who may upload may remove)
_ACL_OF = {
    "upload": "acl_upload",
    "toxresult_upload": "acl_toxresult_upload",
    "del_entry": "acl_upload",
}


def new_index_defaults(_env: IndexEnv, owner: str) -> dict[str, Any]:
    """A new stage lets its owner upload (devpi's default ``acl_upload``)."""
    return {"acl_upload": [owner]}


def resolution_order(
    indexes: Indexes,
    record: IndexRecord,
    can_read: Callable[[IndexRecord], bool] | None = None,
) -> list[IndexRecord]:
    """devpi's stage resolution order: breadth-first over the :meth:`bases` of each index in
    listed order, each index once, missing or unreadable bases skipped, mirrors moved to the end.

    An index whose type names no bases (a mirror, or a type reading its bases itself, as a
    constrained index filters them) is not walked past: its bases reach clients through it.
    """
    seen = {record.fullname}
    order = [record]
    queue = [record]
    while queue:
        current = queue.pop(0)
        if indexes.spec(current) is None:
            continue
        for base in indexes.type_of(current).bases():
            if base in seen:
                continue
            seen.add(base)
            found = indexes.get(base)
            if found is None:
                log.warning("index %s: base %s does not exist", current.fullname, base)
                continue
            if can_read is not None and not can_read(found):
                continue
            order.append(found)
            queue.append(found)
    private = [r for r in order if not indexes.is_mirror(r)]
    return private + [r for r in order if indexes.is_mirror(r)]


def whitelist_contributors(
    indexes: Indexes, order: Sequence[IndexRecord], project: str
) -> Contributors:
    """devpi's ``mirror_whitelist`` walk over ``order`` for ``project``.

    Private indexes accumulate the whitelist (union or intersection, as the first index's
    ``mirror_whitelist_inheritance`` says); once it holds ``*`` or the project, mirrors are
    allowed. Otherwise a private index having the project blocks every mirror after it, so a
    name taken privately is never looked up upstream (dependency-confusion protection).
    """
    inheritance = order[0].config.get("mirror_whitelist_inheritance", "intersection")
    accumulated: set[str] | None = None
    whitelisted = private_hit = False

    def verdict(record: IndexRecord, itype: IndexType) -> Literal["ask", "skip", "block"]:
        nonlocal accumulated, whitelisted, private_hit
        if indexes.is_mirror(record):
            return "block" if private_hit and not whitelisted else "ask"
        names = set(record.config.get("mirror_whitelist", ()))
        if accumulated is None:
            accumulated = names
        elif inheritance == "union":
            accumulated |= names
        else:
            accumulated &= names
        has = itype.has_project(project)
        if whitelisted or "*" in accumulated or project in accumulated:
            whitelisted = True
        elif has:
            private_hit = True
        return "ask" if has else "skip"

    return collect_contributors(order, project, indexes.type_of, verdict)


def allows(config: Mapping[str, Any], permission: str, principals: frozenset[str]) -> bool:
    """``acl_upload`` grants ``upload`` and ``del_entry``, ``acl_toxresult_upload`` tox results."""
    key = _ACL_OF.get(permission)
    acl = config.get(key, ()) if key is not None else ()
    return any(normalize_acl_entry(entry) in principals for entry in acl)


def may_delete(config: Mapping[str, Any], *, force: bool = False) -> bool:
    """A non-volatile stage keeps what it has unless the client insists (``?force``), and
    cannot be deleted at all."""
    return force or config.get("volatile") is not False


def indexes_of(env: IndexEnv) -> Indexes:
    """The running server's indexes."""
    return services.indexes(env.services)
