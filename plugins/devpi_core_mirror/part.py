"""What each part of one mirror index's runtime (its pages, its project list) works with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from devpi_core.indextypes import IndexEnv
    from devpi_core.interfaces import MirrorSource
    from devpi_core_mirror.jobs import JobQueue
    from devpi_core_mirror.metrics import Counters
    from devpi_core_mirror.settings import MirrorSettings


class IndexPart:
    """The index, the core's environment, the mirror settings, the counters and the
    write-behind queue; ``source`` and ``config`` are kept current by the runtime."""

    def __init__(
        self,
        index: str,
        env: IndexEnv,
        settings: MirrorSettings,
        counters: Counters,
        writes: JobQueue,
    ) -> None:
        self.index = index
        self.env = env
        self.settings = settings
        self.counters = counters
        self.writes = writes
        self.source: MirrorSource | None = None
        self.config: Mapping[str, Any] = {}
        self._start()

    def _start(self) -> None:
        """Set up the part's own state (called at the end of ``__init__``)."""

    @property
    def expiry(self) -> float:
        """Seconds a fetched page or list counts as fresh (the index's, else the default)."""
        value = self.config.get("mirror_cache_expiry")
        return float(self.settings.cache_expiry if value is None else value)
