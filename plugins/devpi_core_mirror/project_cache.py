"""The cached project pages of one mirror index: fetch once, revalidate when stale, one upstream
request per project at a time, and the cached copy when the upstream fails (stale-if-error).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from devpi_core.errors import UpstreamUnavailable
from devpi_core.records import MirrorRefreshEvent, UpstreamFile
from devpi_core_mirror import layout
from devpi_core_mirror.cache import MISSING, STALE, STORE, Outcome, PageState, SingleFlight, decide
from devpi_core_mirror.part import IndexPart

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from devpi_core.interfaces import ReadTransaction, WriteTransaction
    from devpi_core.records import ProjectStatus

log = logging.getLogger(__name__)
PARSED_PAGES = 2
PENDING_PAGES = 2
MAX_STATES = 100_000


@dataclass
class CachedPage:
    """A stored page, decoded once per token: the files in upstream order and by name, and
    whatever the index type derives from them (its links), computed once."""

    token: int | None
    files: tuple[UpstreamFile, ...]
    derived: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def by_name(self) -> Mapping[str, UpstreamFile]:
        """The files by file name (built on the first file lookup, not for every page)."""
        return {f.filename: f for f in self.files}


class ProjectPages(IndexPart):
    """Pages of one mirror index."""

    def _start(self) -> None:
        self.closed = False
        self._states: dict[str, PageState] = {}
        self._flights: SingleFlight[None] = SingleFlight(
            lambda n: self.counters.add("waiting", n)
        )
        self._parsed: OrderedDict[tuple[str, int | None], CachedPage] = OrderedDict()
        # fetched pages whose store write has not committed yet (served from here until then)
        self._pending: dict[str, CachedPage] = {}
        self._lock = threading.Lock()

    # -- state -----------------------------------------------------------------------------
    def state(self, project: str) -> PageState:
        """What is known about ``project`` (read from the store on first use)."""
        found = self._states.get(project)
        if found is not None:
            return found
        with self.env.store.read() as tx:
            serial, etag, at, token = self.stored_state(tx, project)
            status = layout.read_status(tx.get(layout.state_key(self.index, project)))
        fresh_until = at + self.expiry if token is not None else 0.0
        loaded = PageState(token, serial, etag, at, fresh_until, project_status=status)
        with self._lock:
            if len(self._states) >= MAX_STATES:
                self._states.clear()  # they reload from the store on demand
            return self._states.setdefault(project, loaded)

    def is_known(self, project: str) -> bool:
        """Whether a page of ``project`` is cached (without remembering names that are not)."""
        found = self._states.get(project)
        if found is not None:
            return found.token is not None
        with self.env.store.read() as tx:
            known = tx.get(layout.state_key(self.index, project)) is not None
        return known and self.state(project).token is not None

    def stored_state(
        self, tx: ReadTransaction, project: str
    ) -> tuple[int | None, str | None, float, int | None]:
        """``(serial, etag, fetched_at, token)`` as stored (the ``s:`` and ``p:`` keys are
        written together, so an ``s:`` record means a page is cached)."""
        value = tx.get(layout.state_key(self.index, project))
        serial, etag, at, token = layout.read_state(value)
        if value is not None and token is None:  # an older record: the page's own key serial
            token = tx.key_serial(layout.page_key(self.index, project))
        return serial, etag, at, token

    def forget(self, project: str) -> None:
        """Drop what this process knows about ``project`` (after it was deleted).

        Never waits for queued writes: it runs inside the transaction deleting an index, and
        the write-behind thread may be waiting for that transaction's lock.
        """
        with self._lock:
            self._states.pop(project, None)

    def close(self) -> None:
        """The index is gone: writes still queued for it are dropped."""
        self.closed = True

    # -- reading ---------------------------------------------------------------------------
    def token(self, project: str) -> int | None:
        """The page token, fetching or revalidating first when needed (see module docstring)."""
        state = self.state(project)
        now = time.time()
        if self.env.offline or state.is_fresh(now):
            if state.token is not None:
                self.counters.add("page_cache_hits")
            return state.token
        if state.is_missing(now):
            return None
        self._flights.do(project, lambda: self._fetch(project))
        return self.state(project).token

    def warning(self, project: str) -> str | None:
        """Why a stale copy is being served, or None."""
        state = self._states.get(project)
        if state is None or state.stale_reason is None:
            return None
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(state.fetched_at))
        return f"serving the copy cached at {when}: {state.stale_reason}"

    def page(self, project: str) -> CachedPage:
        """The stored files of ``project`` (decoded once per token)."""
        token = self.state(project).token
        hit = self._in_memory(project, token)
        if hit is not None:
            return hit
        with self.env.store.read() as tx:
            value = tx.get(layout.page_key(self.index, project))
            token = self.stored_state(tx, project)[3]
        files = tuple(layout.page_files(value))
        return self._remember(project, token, files)

    def find(self, project: str, filename: str) -> UpstreamFile | None:
        """One file of the cached page of ``project``, without decoding a page that is not in
        memory (an installer that resolved from metadata downloads its wheels afterwards,
        when their pages have long left memory)."""
        hit = self._in_memory(project, self.state(project).token)
        if hit is not None:
            return hit.by_name.get(filename)
        with self.env.store.read() as tx:
            value = tx.get(layout.page_key(self.index, project))
        return layout.find_file(value, filename)

    def _in_memory(self, project: str, token: int | None) -> CachedPage | None:
        with self._lock:
            hit = self._parsed.get((project, token))
            if hit is not None:
                self._parsed.move_to_end((project, token))
                return hit
            pending = self._pending.get(project)
            return pending if pending is not None and pending.token == token else None

    def _remember(
        self, project: str, token: int | None, files: tuple[UpstreamFile, ...]
    ) -> CachedPage:
        cached = CachedPage(token, files)
        with self._lock:
            self._parsed[(project, token)] = cached
            while len(self._parsed) > PARSED_PAGES:
                self._parsed.popitem(last=False)
        return cached

    def refresh(self, project: str) -> None:
        """Ask the upstream now, unconditionally (``POST .../refresh``)."""
        state = self.state(project)
        state.fresh_until = state.missing_until = 0.0
        state.etag = None
        if self.env.offline:
            return
        try:
            self.token(project)
        except UpstreamUnavailable as exc:
            log.warning("%s: refreshing %s failed: %s", self.index, project, exc.message)

    # -- fetching --------------------------------------------------------------------------
    def _fetch(self, project: str) -> None:
        state = self.state(project)
        if state.is_fresh(time.time()):
            return  # another request fetched it while this one queued
        if self.source is None:
            raise UpstreamUnavailable(f"{self.index} has no usable upstream")
        self.counters.add("upstream_page_requests")
        try:
            page = self.source.get_page(
                project, etag=state.etag if state.token is not None else None
            )
        except UpstreamUnavailable as exc:
            self.counters.add("upstream_errors")
            if state.token is None:
                raise
            self._go_stale(project, state, exc.message)
            return
        outcome = decide(
            state, page, ignore_serial=bool(self.config.get("mirror_ignore_serial_header"))
        )
        if outcome.action == MISSING:
            state.missing_until = time.time() + self.settings.missing_expiry
        elif outcome.action == STALE:
            self.counters.add("upstream_errors")
            self._go_stale(project, state, outcome.reason)
        else:
            self._save(project, state, outcome)

    def _go_stale(self, project: str, state: PageState, reason: str) -> None:
        if state.stale_reason is None:
            log.warning(
                "%s: upstream failed for %s (%s); serving the cached page",
                self.index,
                project,
                reason,
            )
        state.stale_reason = reason
        state.fresh_until = time.time() + self.settings.error_retry
        self.counters.add("stale_served")

    def _save(self, project: str, state: PageState, outcome: Outcome) -> None:
        """Take the answer into memory now; store it behind the answer (see ``jobs``)."""
        now = time.time()
        is_new = state.token is None
        status = state.project_status if outcome.action != STORE else outcome.project_status
        changed = outcome.action == STORE and not self._unchanged(
            project, state, outcome.files, status
        )
        takedowns = Takedowns()
        if changed:  # the old page is in memory: _unchanged just read it
            old_names = frozenset() if is_new else frozenset(self.page(project).by_name)
            new_names = frozenset(f.filename for f in outcome.files)
            takedowns = Takedowns(old_names - new_names, new_names - old_names, now)
        # the token only has to change with the files; a time in ns does, without a commit
        token = time.time_ns() if changed else state.token
        pending = None
        if changed:
            pending = self._remember(project, token, outcome.files)
            with self._lock:
                self._pending[project] = pending
        if state.stale_reason is not None:
            log.warning("%s: upstream answers again for %s", self.index, project)
        state.token, state.serial, state.etag = token, outcome.serial, outcome.etag
        state.fetched_at, state.fresh_until = now, now + self.expiry
        state.stale_reason, state.missing_until = None, 0.0
        state.project_status = status
        record = layout.state_record(outcome.serial, outcome.etag, now, token, status)
        event = MirrorRefreshEvent(self.index, project, changed, outcome.serial)
        self.writes.submit(
            lambda: self._write(project, record, pending, event, is_new=is_new, takedowns=takedowns)
        )
        if changed and not is_new:
            # rendered pages built on the old files stay valid until the store's serial moves:
            # a page that changed is committed before it is answered
            self.writes.flush()
        elif changed:
            # each queued page holds its files in memory until stored: with dozens of cold
            # pages asked at once (uv) the queue would hold them all
            self.writes.wait_below(PENDING_PAGES + 1)

    def _write(
        self,
        project: str,
        record: Mapping[str, Any],
        pending: CachedPage | None,
        event: MirrorRefreshEvent,
        *,
        is_new: bool,
        takedowns: Takedowns,
    ) -> None:
        """Commit a fetch (on the write-behind thread); on failure forget it, so it is
        fetched again rather than served from memory while the store lacks it."""
        try:
            if not self.closed:
                self._commit(project, record, pending, is_new=is_new, takedowns=takedowns)
        except Exception:
            with self._lock:
                self._states.pop(project, None)
            raise
        finally:
            with self._lock:
                if pending is not None and self._pending.get(project) is pending:
                    del self._pending[project]
        if not self.closed:
            self.env.emit(event)

    def _commit(
        self,
        project: str,
        record: Mapping[str, Any],
        pending: CachedPage | None,
        *,
        is_new: bool,
        takedowns: Takedowns,
    ) -> None:
        with self.env.store.write() as tx:
            if self.closed:  # the index was deleted while this waited for the writer lock
                return
            if pending is not None:
                tx.set(layout.page_key(self.index, project), layout.page_record(pending.files))
                takedowns.apply(tx, self.index)
                if is_new:
                    known = tx.get(layout.known_key(self.index)) or {}
                    tx.set(
                        layout.known_key(self.index), {"changes": int(known.get("changes", 0)) + 1}
                    )
            tx.set(layout.state_key(self.index, project), record)

    def _unchanged(
        self,
        project: str,
        state: PageState,
        files: tuple[UpstreamFile, ...],
        status: ProjectStatus | None,
    ) -> bool:
        """Whether ``files`` and ``status`` equal the cached page (an upstream may answer 200
        with the same page; rewriting it would change the token and re-render every page built
        on it)."""
        if state.token is None or state.project_status != status:
            return False
        cached = self.page(project)
        return cached.token == state.token and cached.files == files


@dataclass(frozen=True)
class Takedowns:
    """Files a changed page dropped (``gone``) or lists again (``back``), marked on their
    ``f:`` records in the page's commit, so a cached copy of a file the upstream removed is no
    longer served (:meth:`MirrorIndex.get_file`) while its blob is kept."""

    gone: frozenset[str] = frozenset()
    back: frozenset[str] = frozenset()
    at: float = 0.0

    def apply(self, tx: WriteTransaction, index: str) -> None:
        """Mark or unmark the ``f:`` records (a file and its ``.metadata``) within ``tx``."""
        for names, removed in ((self.gone, True), (self.back, False)):
            for key, value in file_records(tx, index, names):
                if ("removed" in value) == removed:
                    continue
                changed = {k: v for k, v in value.items() if k != "removed"}
                if removed:
                    changed["removed"] = round(self.at, 3)
                tx.set(key, changed)


SCAN_FROM = 64


def file_records(
    tx: ReadTransaction, index: str, names: Iterable[str]
) -> list[tuple[str, Mapping[str, Any]]]:
    """The ``f:`` records there are of the files ``names`` and their ``.metadata``.

    A few names are looked up one by one; many (every file of a page seen for the first time,
    when hardly any has a record) by one range scan per file-name prefix, not one read per
    file: a 9,000-file page cost 18,000 reads in its commit.
    """
    named = set(names)
    start = layout.files_prefix(index)
    if len(named) * 2 < SCAN_FROM:
        wanted = sorted({name + suffix for name in named for suffix in ("", ".metadata")})
        found = ((start + filename, tx.get(start + filename)) for filename in wanted)
        return [(key, value) for key, value in found if value is not None]
    prefixes: list[str] = []
    for prefix in sorted({filename.split("-", 1)[0] for filename in named}):
        if not prefixes or not prefix.startswith(prefixes[-1]):  # "a" covers "ab"
            prefixes.append(prefix)
    # a page seen for the first time usually has no records: only what the scans find is
    # checked against the names (no set of every name with and without ".metadata")
    result = []
    for prefix in prefixes:
        for key, value in tx.items(start + prefix):
            filename = key[len(start) :]
            if filename in named or (
                filename.endswith(".metadata") and filename[: -len(".metadata")] in named
            ):
                result.append((key, value))
    return result
