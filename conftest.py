"""Shared test setup.

The fixtures live in ``devpi_core.testing.plugin``, which pytest loads through the ``pytest11``
entry point (so third-party plugin suites get them too); markers are declared in setup.cfg.
"""

from __future__ import annotations

collect_ignore = ["benchmarks", "build", "docs"]
