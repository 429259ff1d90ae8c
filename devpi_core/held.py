"""Versions an index holds back: the serve policies' decisions, and a cache of them.

Policies come from :func:`~devpi_core.hookspecs.devpi_serve_policies`. A decision is taken once
per project and index for a given serial of the store and given policy keys (a policy's key
changes when its answer may change with time, e.g. when the next held version becomes
eligible); every later question (a page render, a file download, a JSON listing) is a
dictionary lookup.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from devpi_core.errors import Forbidden
from devpi_core.records import ProjectView

if TYPE_CHECKING:
    from collections.abc import Hashable, Mapping, Sequence

    from devpi_core.interfaces import ServePolicy
    from devpi_core.records import IndexRecord, Link

NOTHING_HELD: Mapping[str, str] = {}


class ServePolicies:
    """The serve policies of the server, asked together."""

    def __init__(self, policies: Sequence[ServePolicy]) -> None:
        self.policies = tuple(policies)

    def active(self, record: IndexRecord) -> tuple[ServePolicy, ...]:
        """The policies that have something to say about ``record``."""
        if not self.policies:
            return ()
        return tuple(policy for policy in self.policies if policy.applies(record))

    def state(
        self, order: Sequence[IndexRecord], project: str
    ) -> tuple[tuple[Hashable, ...], float | None]:
        """The policies' keys for ``project`` over the indexes of ``order`` (an index and its
        bases) and the seconds they hold at most."""
        keys: list[Hashable] = []
        seconds: float | None = None
        if not self.policies:
            return (), None
        for record in order:  # the warm path of every page: no allocation beyond the keys
            for policy in self.policies:
                if policy.applies(record):
                    key, valid = policy.state(record, project)
                    keys.append((record.fullname, key))
                    if valid is not None and (seconds is None or valid < seconds):
                        seconds = valid
        return tuple(keys), seconds

    def any_active(self, order: Sequence[IndexRecord]) -> bool:
        """Whether a policy has rules for any index of ``order``."""
        return bool(self.policies) and any(self.active(record) for record in order)

    def decide(
        self, record: IndexRecord, project: str, links: Sequence[Link], mirrors: frozenset[str]
    ) -> Mapping[str, str]:
        """``{version: message}`` of what ``record`` holds back of ``project``."""
        held: dict[str, str] = {}
        view = ProjectView(record, project, links, mirrors)
        for policy in self.active(record):
            for version, message in policy.decide(view).held.items():
                held.setdefault(version, message)
        return held or NOTHING_HELD


def without_held(links: Sequence[Link], held: Mapping[str, str]) -> Sequence[Link]:
    """``links`` minus those of held versions."""
    if not held:
        return links
    return [link for link in links if link.version not in held]


def refuse_if_held(held: Mapping[str, str], version: str | None) -> None:
    """Raise the 403 of a held ``version``."""
    if version is not None:
        message = held.get(version)
        if message is not None:
            raise Forbidden(message)


@dataclass(frozen=True)
class _Decision:
    serial: int
    keys: tuple[Hashable, ...]
    held: Mapping[str, str]


class DecisionCache:
    """Decisions per (index, project, resolution order), valid for one serial and key set."""

    def __init__(self, max_entries: int = 10000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, _Decision] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, key: Hashable, serial: int, keys: tuple[Hashable, ...]
    ) -> Mapping[str, str] | None:
        """The held versions under ``key`` if still valid."""
        entry = self._entries.get(key)
        if entry is None or entry.serial != serial or entry.keys != keys:
            return None
        return entry.held

    def put(
        self, key: Hashable, serial: int, keys: tuple[Hashable, ...], held: Mapping[str, str]
    ) -> None:
        """Remember a decision; the oldest go beyond ``max_entries``."""
        with self._lock:
            self._entries[key] = _Decision(serial, keys, held)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
