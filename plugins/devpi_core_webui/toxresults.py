"""Tox results (the JSON ``devpi test`` uploads) summarised per test environment.

Anyone may upload tox results by default, so a page never renders them as they come: each is
summarised once into a :class:`ToxReport` of at most :data:`MAX_ENVS` environments with short
texts, and summaries are kept per content digest in :class:`ToxSummaries` (a stored result never
changes). Twenty 3.8 MB results with 1.3 MB host names made a version page take 3-6 s and
51 MB of HTML on every view.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from devpi_core import services
from devpi_core_webui.markup import Markup, el, join
from devpi_core_webui.releases import TOXRESULT

if TYPE_CHECKING:
    from pyramid.registry import Registry
    from pyramid.request import Request

    from devpi_core.records import IndexRecord
    from devpi_core_webui.releases import Release

log = logging.getLogger(__name__)
MAX_BYTES = 4 * 1024 * 1024
# environments listed per result (the counts cover all of them), and characters per text
MAX_ENVS = 30
MAX_TEXT = 80
# summaries kept in memory: a few hundred bytes each
CACHE_ENTRIES = 2048
# newest tox results shown per release file; older ones are counted in a note
MAX_TOX_PER_FILE = 10
_TOX_SUFFIX = re.compile(r"\.toxresult-(\d+)-(\d+)$")


@dataclass(frozen=True)
class ToxEnv:
    """One test environment of a tox run."""

    name: str
    python: str
    setup_failed: bool
    test_failed: bool
    commands: int

    @property
    def failed(self) -> bool:
        """Whether setting up or testing failed."""
        return self.setup_failed or self.test_failed


@dataclass(frozen=True)
class ToxReport:
    """One uploaded tox result: where it ran and how each environment did.

    ``problem`` says why nothing could be read (missing, too large, not tox's format).
    """

    relpath: str
    host: str = ""
    platform: str = ""
    envs: tuple[ToxEnv, ...] = ()
    problem: str = ""
    passed: int = 0
    failed: int = 0

    @property
    def more_envs(self) -> int:
        """Environments counted but not listed in ``envs``."""
        return self.passed + self.failed - len(self.envs)


class ToxSummaries:
    """Summaries of stored tox results by sha256, the least recently used dropped first."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self.entries = entries
        self._lock = threading.Lock()
        self._found: OrderedDict[str, ToxReport] = OrderedDict()

    def get(self, sha256: str) -> ToxReport | None:
        """The summary of blob ``sha256`` if it was made before."""
        with self._lock:
            report = self._found.get(sha256)
            if report is not None:
                self._found.move_to_end(sha256)
            return report

    def put(self, sha256: str, report: ToxReport) -> None:
        """Remember the summary of blob ``sha256``."""
        with self._lock:
            self._found[sha256] = report
            self._found.move_to_end(sha256)
            while len(self._found) > self.entries:
                self._found.popitem(last=False)


def register(registry: Registry) -> None:
    """Keep summaries for the life of the server."""
    services.register(registry, ToxSummaries, ToxSummaries())


def _text(value: Any) -> str:
    text = str(value or "")
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _failed(commands: Any) -> bool:
    if not isinstance(commands, list):
        return False
    return any(isinstance(c, Mapping) and str(c.get("retcode", "0")) != "0" for c in commands)


def _python(env: Mapping[str, Any]) -> str:
    python = env.get("python")
    version = python.get("version") if isinstance(python, Mapping) else None
    return _text(version.split()[0]) if isinstance(version, str) and version.split() else ""


def summarize(relpath: str, data: Any) -> ToxReport:
    """Read tox's result format: ``testenvs`` -> ``{setup: [...], test: [...], python}``.

    Lists the first :data:`MAX_ENVS` environments by name and counts them all.
    """
    testenvs = data.get("testenvs") if isinstance(data, Mapping) else None
    if not isinstance(testenvs, Mapping):
        return ToxReport(relpath, problem="not a tox result")
    envs: list[ToxEnv] = []
    passed = failed = 0
    for name in sorted(testenvs, key=str):
        env = testenvs[name]
        if not isinstance(env, Mapping):
            continue
        test = env.get("test")
        found = ToxEnv(_text(name), _python(env), _failed(env.get("setup")), _failed(test),
                       len(test) if isinstance(test, list) else 0)
        failed += found.failed
        passed += not found.failed
        if len(envs) < MAX_ENVS:
            envs.append(found)
    return ToxReport(relpath, _text(data.get("host")), _text(data.get("platform")),
                     tuple(envs), passed=passed, failed=failed)


def load(request: Request, index: IndexRecord, relpath: str) -> ToxReport:
    """The tox result stored at ``relpath`` on ``index``, summarised (once per content)."""
    ref = services.indexes(request).type_of(index).get_file(relpath)
    if ref is None or ref.sha256 is None:
        return ToxReport(relpath, problem="not stored")
    summaries = services.lookup(request.registry, ToxSummaries)
    known = summaries.get(ref.sha256)
    if known is None:
        known = _read(request, relpath, ref.sha256)
        if known.problem != "not stored":
            summaries.put(ref.sha256, known)
    return known if known.relpath == relpath else replace(known, relpath=relpath)


def _read(request: Request, relpath: str, sha256: str) -> ToxReport:
    try:
        with services.blob_store(request).open(sha256) as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        log.warning("tox result %s: blob %s is missing", relpath, sha256)
        return ToxReport(relpath, problem="not stored")
    if len(raw) > MAX_BYTES:
        return ToxReport(relpath, problem="too large to summarise")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # stored before the server checked tox results' nesting, or by another server
        return ToxReport(relpath, problem="not valid JSON")
    return summarize(relpath, data)


def tox_cell(reports: list[ToxReport]) -> Markup:
    """Passed and failed environments of a file's tox results, as badges."""
    passed = sum(r.passed for r in reports)
    failed = sum(r.failed for r in reports)
    if not reports:
        return Markup("")
    parts = [el("span", f"{passed} passed", class_="badge passed")] if passed else []
    if failed:
        parts.append(el("span", f"{failed} failed", class_="badge failed"))
    return join(parts, " ") or el("span", "no environments", class_="badge")



@dataclass
class ToxResults:
    """The newest tox results of each release file, summarised, and how many each file has."""

    reports: dict[str, list[ToxReport]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)


def _upload_order(item: tuple[IndexRecord, Mapping[str, Any]]) -> tuple[str, int]:
    # "<file>.toxresult-<YYYYmmddHHMMSS>-<n>": stores may list files sorted by name, where -10
    # comes before -2
    match = _TOX_SUFFIX.search(str(item[1].get("relpath", "")))
    return (match.group(1), int(match.group(2))) if match else ("", 0)


def load_all(request: Request, release: Release) -> ToxResults:
    """The newest :data:`MAX_TOX_PER_FILE` tox results of each file of ``release``."""
    tox = ToxResults()
    newest_first = sorted(release.links(TOXRESULT), key=_upload_order, reverse=True)
    for index, entry in newest_first:
        for_relpath = str(entry.get("for_relpath", ""))
        found = tox.reports.setdefault(for_relpath, [])
        tox.totals[for_relpath] = tox.totals.get(for_relpath, 0) + 1
        if len(found) < MAX_TOX_PER_FILE:
            found.append(load(request, index, str(entry["relpath"])))
    return tox
