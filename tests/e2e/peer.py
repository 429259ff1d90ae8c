"""devpi-server beside devpi-core: the harness that starts it, for the parity tests.

devpi-server lives in the venv ``benchmarks/harness.py`` builds (``make test`` runs
``ensure_peer_venv``); tests never reach the package index themselves, so without it a parity
test skips, and fails under ``CI=true``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from devpi_core.testing.plugin import missing_component

HARNESS = Path(__file__).resolve().parents[2] / "benchmarks" / "harness.py"
# devpi-server's argon2 at its cheapest, so logins do not dominate the run
FAST_ARGON2 = ["--argon2-memory-cost", "8", "--argon2-parallelism", "1", "--argon2-time-cost", "1"]


def peer_harness() -> Any:
    """``benchmarks/harness.py`` as a module, once devpi-server's venv is known to exist."""
    spec = importlib.util.spec_from_file_location("devpi_core_bench_harness", HARNESS)
    if spec is None or spec.loader is None or not HARNESS.exists():
        pytest.skip("benchmarks/harness.py is not available (installed package?)")
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
    if not (module.PEER_VENV / "bin" / "devpi-server").exists():
        missing_component("no devpi-server venv: make test (make components) creates it")
    return module
