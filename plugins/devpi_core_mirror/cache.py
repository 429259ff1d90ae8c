"""Pure cache policy for mirrored project pages: freshness, serial checks, stale-if-error.

No I/O here: :func:`decide` turns what the upstream answered into what to do with the cache,
so the rules can be tested without a server.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    from devpi_core.records import ProjectStatus, UpstreamFile, UpstreamPage

T = TypeVar("T")
STORE = "store"
TOUCH = "touch"
MISSING = "missing"
STALE = "stale"


@dataclass
class PageState:
    """What one process knows about one cached project page.

    ``token`` changes whenever the cached files change (None: nothing cached).
    ``fetched_at`` is the last successful contact with the upstream (persisted);
    ``fresh_until`` says when to ask again (after a failure: sooner than the expiry);
    ``stale_reason`` is set while a stale copy is served because the upstream failed;
    ``project_status`` is the upstream's PEP 792 status of the cached page (None: active).
    """

    token: int | None = None
    serial: int | None = None
    etag: str | None = None
    fetched_at: float = 0.0
    fresh_until: float = 0.0
    stale_reason: str | None = None
    missing_until: float = 0.0
    project_status: ProjectStatus | None = None

    def is_fresh(self, now: float) -> bool:
        """Whether the page may be served without asking the upstream."""
        return self.token is not None and now < self.fresh_until

    def is_missing(self, now: float) -> bool:
        """Whether the upstream recently said it has no such project (and nothing is cached)."""
        return self.token is None and now < self.missing_until


@dataclass(frozen=True)
class Outcome:
    """What to do after an upstream answer: ``store`` new files, ``touch`` (still valid),
    remember ``missing``, or keep serving ``stale`` data for ``reason``."""

    action: str
    files: tuple[UpstreamFile, ...] = ()
    serial: int | None = None
    etag: str | None = None
    reason: str = ""
    project_status: ProjectStatus | None = None


def serial_went_back(stored: int | None, received: int | None) -> bool:
    """Whether an answer's serial is older than what the cache was built from."""
    return stored is not None and received is not None and 0 <= received < stored


def decide(state: PageState, page: UpstreamPage, *, ignore_serial: bool) -> Outcome:
    """devpi's rules, plus a persisted ETag/serial: see the module docstring."""
    cached = state.token is not None
    newer_serial = (
        page.serial
        if page.serial is not None and not serial_went_back(state.serial, page.serial)
        else state.serial
    )
    if page.status == "not_modified":
        return Outcome(TOUCH, serial=newer_serial, etag=page.etag or state.etag)
    if page.status == "not_found":
        # devpi keeps serving links that vanished upstream ("stale links forever")
        return Outcome(TOUCH, serial=state.serial, etag=state.etag) if cached else Outcome(MISSING)
    if cached and not ignore_serial and serial_went_back(state.serial, page.serial):
        return Outcome(
            STALE,
            reason=f"upstream serial {page.serial} is older than the cached "
            f"{state.serial} (a stale upstream mirror?)",
        )
    serial = page.serial if ignore_serial or page.serial is not None else state.serial
    return Outcome(
        STORE, page.files, serial=serial, etag=page.etag, project_status=page.project_status
    )


@dataclass
class _Call(Generic[T]):
    done: threading.Event = field(default_factory=threading.Event)
    result: T | None = None
    error: BaseException | None = None


class SingleFlight(Generic[T]):
    """At most one call per key at a time; callers arriving meanwhile share its outcome."""

    def __init__(self, on_wait: Callable[[int], None] = lambda _delta: None) -> None:
        self._calls: dict[Hashable, _Call[T]] = {}
        self._lock = threading.Lock()
        self._on_wait = on_wait

    def do(self, key: Hashable, fn: Callable[[], T]) -> T:
        """Run ``fn`` unless a call for ``key`` is under way; either way return its result."""
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = _Call()
        if leader:
            try:
                call.result = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to every caller, re-raised below
                call.error = exc
            finally:
                with self._lock:
                    del self._calls[key]
                call.done.set()
        else:
            self._on_wait(1)
            try:
                call.done.wait()
            finally:
                self._on_wait(-1)
        if call.error is not None:
            raise call.error
        return call.result  # type: ignore[return-value]

    def running(self, key: Hashable) -> bool:
        """Whether a call for ``key`` is under way."""
        return key in self._calls
