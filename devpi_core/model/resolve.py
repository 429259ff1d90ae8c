"""Which indexes answer for a project, as each index's type says, cached.

Index records and resolution orders are cached per metadata serial, so a warm request costs one
serial read; any write drops these caches. The rules themselves (inheritance over ``bases``,
``mirror_whitelist``) are the index types' (:class:`~devpi_core.indextypes.IndexType`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from devpi_core.model.acl import is_public

if TYPE_CHECKING:
    from collections.abc import Hashable, Sequence

    from devpi_core.indextypes import Contributors
    from devpi_core.model.indexes import Indexes
    from devpi_core.records import IndexRecord


class Reader(Protocol):
    """Who reads: a cache key for their view of the indexes, and a read check."""

    def key(self) -> Hashable:
        """Equal for readers that may read the same indexes."""

    def can_read(self, record: IndexRecord) -> bool:
        """Whether the reader may read ``record``."""


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
        """The indexes of ``order`` contributing to ``project``, as the type of the first one
        (the index asked for) says."""
        return self.indexes.type_of(order[0]).contributors(order, project)
