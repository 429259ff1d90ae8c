"""devpi-core: a plugin-based Python package index server.

Plugins import ``hookimpl`` from here to implement the hooks in :mod:`devpi_core.hookspecs`.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("devpi_core")

__all__ = ["__version__", "hookimpl"]
