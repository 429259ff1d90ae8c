"""Tox results (the JSON ``devpi test`` uploads) summarised per test environment."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devpi_core import services

if TYPE_CHECKING:
    from pyramid.request import Request

    from devpi_core.records import IndexRecord

log = logging.getLogger(__name__)
MAX_BYTES = 4 * 1024 * 1024


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

    @property
    def passed(self) -> int:
        """Environments that passed."""
        return sum(1 for env in self.envs if not env.failed)

    @property
    def failed(self) -> int:
        """Environments that failed."""
        return sum(1 for env in self.envs if env.failed)


def _failed(commands: Any) -> bool:
    if not isinstance(commands, list):
        return False
    return any(isinstance(c, Mapping) and str(c.get("retcode", "0")) != "0" for c in commands)


def _python(env: Mapping[str, Any]) -> str:
    python = env.get("python")
    version = python.get("version") if isinstance(python, Mapping) else None
    return version.split()[0] if isinstance(version, str) and version.split() else ""


def summarize(relpath: str, data: Any) -> ToxReport:
    """Read tox's result format: ``testenvs`` -> ``{setup: [...], test: [...], python}``."""
    testenvs = data.get("testenvs") if isinstance(data, Mapping) else None
    if not isinstance(testenvs, Mapping):
        return ToxReport(relpath, problem="not a tox result")
    envs = []
    for name in sorted(testenvs, key=str):
        env = testenvs[name]
        if not isinstance(env, Mapping):
            continue
        test = env.get("test")
        envs.append(ToxEnv(str(name), _python(env), _failed(env.get("setup")), _failed(test),
                           len(test) if isinstance(test, list) else 0))
    return ToxReport(relpath, str(data.get("host") or ""), str(data.get("platform") or ""),
                     tuple(envs))


def load(request: Request, index: IndexRecord, relpath: str) -> ToxReport:
    """The tox result stored at ``relpath`` on ``index``, summarised."""
    ref = services.indexes(request).type_of(index).get_file(relpath)
    if ref is None or ref.sha256 is None:
        return ToxReport(relpath, problem="not stored")
    try:
        with services.blob_store(request).open(ref.sha256) as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        log.warning("tox result %s: blob %s is missing", relpath, ref.sha256)
        return ToxReport(relpath, problem="not stored")
    if len(raw) > MAX_BYTES:
        return ToxReport(relpath, problem="too large to summarise")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # stored before the server checked tox results' nesting, or by another server
        return ToxReport(relpath, problem="not valid JSON")
    return summarize(relpath, data)
