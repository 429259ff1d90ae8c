"""The policy as core consults it: rules per index, decisions, audit lines and counters."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from devpi_core.interfaces import ServePolicy
from devpi_core.records import ServeDecision
from devpi_core_policy.decide import decide
from devpi_core_policy.rules import DRY_RUN, ENFORCE, Rules, iso, rules_of

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    from devpi_core.records import IndexRecord, ProjectView
    from devpi_core_policy.decide import Hold

audit_log = logging.getLogger("devpi_core.policy.audit")
AUDIT_MEMORY = 100_000
# Projects whose next change of outcome is remembered, least recently used dropped first: a
# mirror of a million names asked for each would otherwise keep a million entries (~200 bytes
# each). A dropped project reads as undecided: its next page or file decides it again.
NEXT_MEMORY = 50_000


class Counters:
    """Holds and would-holds so far (small and local: easy to move to any metrics library)."""

    def __init__(self) -> None:
        self.holds = 0
        self.would_holds = 0
        self._lock = threading.Lock()

    def count(self, *, dry_run: bool) -> None:
        """One more (would-)hold."""
        with self._lock:
            if dry_run:
                self.would_holds += 1
            else:
                self.holds += 1

    def metrics(self) -> list[tuple[str, str, float]]:
        """``(name, kind, value)`` triples for ``/+status``."""
        return [
            ("devpi_policy_holds_total", "counter", float(self.holds)),
            ("devpi_policy_would_holds_total", "counter", float(self.would_holds)),
        ]


class Policy(ServePolicy):
    """Cooldowns, exclude_newer, allow/deny, exemptions and waivers, per index.

    ``clock`` is the time source (tests set it). The next time a project's outcome changes is
    remembered per index and project (for the ``memory`` most recently used); :meth:`state`
    turns it into the page's cache key and max-age, so a held version appears exactly when it
    becomes eligible.
    """

    def __init__(self, clock: Callable[[], float] = time.time, memory: int = NEXT_MEMORY) -> None:
        self.clock = clock
        self.memory = memory
        self.counters = Counters()
        self._rules: dict[str, tuple[int, Rules | None]] = {}
        self._next: OrderedDict[tuple[str, str], float | None] = OrderedDict()
        self._audited: OrderedDict[Hashable, None] = OrderedDict()
        self._lock = threading.Lock()

    def rules(self, index: IndexRecord) -> Rules | None:
        """The parsed rules of ``index`` (cached per configuration serial)."""
        cached = self._rules.get(index.fullname)
        if cached is not None and cached[0] == index.serial:
            return cached[1]
        rules = rules_of(index.fullname, index.config)
        self._rules[index.fullname] = (index.serial, rules)
        return rules

    def applies(self, index: IndexRecord) -> bool:
        """Whether ``index`` has rules."""
        return self.rules(index) is not None

    def state(self, index: IndexRecord, project: str) -> tuple[Hashable, float | None]:
        """The next change of the project's outcome (passed: a new key) and seconds to it."""
        key = (index.fullname, project)
        with self._lock:
            if key not in self._next:
                return ("undecided",), None
            self._next.move_to_end(key)
            upcoming = self._next[key]
        if upcoming is None:
            return ("steady",), None
        now = self.clock()
        if now >= upcoming:
            return ("passed", upcoming), 0.0
        return ("until", upcoming), upcoming - now

    def decide(self, view: ProjectView) -> ServeDecision:
        """Hold what the rules hold (nothing in dry_run), and audit it."""
        rules = self.rules(view.index)
        if rules is None:
            return ServeDecision()
        outcome = decide(rules, view, self.clock())
        self._remember((view.index.fullname, view.project), outcome.next_change)
        for hold in outcome.holds:
            self._audit(rules, view.project, hold)
        if rules.dry_run:
            return ServeDecision()
        return ServeDecision({hold.version: hold.message for hold in outcome.holds})

    def _remember(self, key: tuple[str, str], upcoming: float | None) -> None:
        with self._lock:
            self._next[key] = upcoming
            self._next.move_to_end(key)
            while len(self._next) > self.memory:
                self._next.popitem(last=False)

    def _audit(self, rules: Rules, project: str, hold: Hold) -> None:
        # a decision is retaken after every write to the store: audit each hold once
        mode = DRY_RUN if rules.dry_run else ENFORCE
        key = (rules.index, project, hold.version, hold.rule, hold.eligible, mode)
        with self._lock:
            if key in self._audited:
                return
            self._audited[key] = None
            if len(self._audited) > AUDIT_MEMORY:
                self._audited.popitem(last=False)
        self.counters.count(dry_run=rules.dry_run)
        record = {
            "event": "would_hold" if rules.dry_run else "hold",
            "index": rules.index,
            "project": project,
            "version": hold.version,
            "rule": hold.rule,
            "eligible": None if hold.eligible is None else iso(hold.eligible),
            "message": hold.message,
            "time": iso(self.clock()),
        }
        audit_log.info("%s", json.dumps(record, sort_keys=True))
