"""Which indexes answer for a project: resolution order, ``mirror_whitelist``, merging.

Index records and resolution orders are cached per metadata serial, so a warm request costs one
serial read; any write drops these caches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from devpi_core.errors import UpstreamUnavailable
from devpi_core.model.acl import is_public

if TYPE_CHECKING:
    from collections.abc import Hashable, Sequence

    from devpi_core.model.indexes import Indexes
    from devpi_core.records import IndexRecord, Link

log = logging.getLogger(__name__)


class Reader(Protocol):
    """Who reads: a cache key for their view of the indexes, and a read check."""

    def key(self) -> Hashable:
        """Equal for readers that may read the same indexes."""

    def can_read(self, record: IndexRecord) -> bool:
        """Whether the reader may read ``record``."""


@dataclass(frozen=True)
class Contributors:
    """The indexes whose links make up a project page, and the mirrors held back."""

    stages: tuple[IndexRecord, ...]
    tokens: tuple[Hashable, ...]
    blocked: tuple[str, ...]
    fresh_until: float


class _Generation:
    """What was read while the store was at one serial."""

    def __init__(self, serial: int) -> None:
        self.serial = serial
        self.records: dict[str, IndexRecord | None] = {}
        self.orders: dict[Hashable, tuple[IndexRecord, ...]] = {}


class Resolver:
    """Serial-keyed caches of index records and resolution orders.

    Each serial gets a fresh generation; a reader that started before a write stores what it
    read into its own (by then discarded) generation, so stale data never outlives a write.
    """

    def __init__(self, indexes: Indexes) -> None:
        self.indexes = indexes
        self._gen = _Generation(-1)

    def sync(self, serial: int) -> _Generation:
        """The cache generation for ``serial`` (a new one if the store moved on)."""
        gen = self._gen
        if gen.serial != serial:
            gen = _Generation(serial)
            self._gen = gen
        return gen

    def record(self, gen: _Generation, fullname: str) -> IndexRecord | None:
        """The index ``user/name``."""
        try:
            return gen.records[fullname]
        except KeyError:
            record = gen.records[fullname] = self.indexes.get(fullname)
            return record

    def public_order(self, gen: _Generation, record: IndexRecord) -> tuple[IndexRecord, ...] | None:
        """The full resolution order of ``record`` if every index in it is public, else None."""
        public = gen.orders.get((record.fullname, None))
        if public is None:
            public = gen.orders[(record.fullname, None)] = tuple(
                self.indexes.resolution_order(record)
            )
        return public if all(is_public(r) for r in public) else None

    def order(
        self, gen: _Generation, record: IndexRecord, reader: Reader
    ) -> tuple[IndexRecord, ...]:
        """The resolution order of ``record`` as ``reader`` may see it.

        When every index in the full order is public (the default) the reader's identity is
        never needed, so anonymous and authenticated readers share one cached order.
        """
        public = self.public_order(gen, record)
        if public is not None:
            return public
        key = (record.fullname, reader.key())
        found = gen.orders.get(key)
        if found is None:
            found = gen.orders[key] = tuple(self.indexes.resolution_order(record, reader.can_read))
        return found

    def contributors(self, order: Sequence[IndexRecord], project: str) -> Contributors:
        """devpi's ``mirror_whitelist`` walk over ``order`` for ``project``.

        Private indexes accumulate the whitelist (union or intersection, as the first index's
        ``mirror_whitelist_inheritance`` says); once it holds ``*`` or the project, mirrors are
        allowed. Otherwise a private index having the project blocks every mirror after it, so a
        name taken privately is never looked up upstream (dependency-confusion protection).
        """
        inheritance = order[0].config.get("mirror_whitelist_inheritance", "intersection")
        accumulated: set[str] | None = None
        whitelisted = private_hit = False
        stages, tokens, blocked = [], [], []
        fresh_until = float("inf")
        for record in order:
            itype = self.indexes.type_of(record)
            if not self.indexes.is_mirror(record):
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
                if not has:
                    continue
            elif private_hit and not whitelisted:
                blocked.append(record.fullname)
                continue
            token = self._token(record, project, own=record is order[0])
            if token is None:
                continue
            stages.append(record)
            tokens.append(token)
            fresh_until = min(fresh_until, itype.fresh_until(project))
        return Contributors(tuple(stages), tuple(tokens), tuple(blocked), fresh_until)

    def _token(self, record: IndexRecord, project: str, *, own: bool) -> Hashable | None:
        try:
            return self.indexes.type_of(record).page_token(project)
        except UpstreamUnavailable:
            if own:
                raise
            # devpi: an upstream error of a *base* mirror is logged and treated as absent.
            log.warning(
                "index %s: upstream failed for %s; leaving it out", record.fullname, project
            )
            return None


def merge_links(parts: Sequence[Sequence[Link]]) -> list[Link]:
    """Concatenate per-index links in resolution order.

    A filename seen earlier shadows later ones.
    """
    seen: set[str] = set()
    merged = []
    for links in parts:
        for link in links:
            if link.filename not in seen:
                seen.add(link.filename)
                merged.append(link)
    return merged
