"""``python -m devpi_core`` runs the ``devpi-core`` command."""

from __future__ import annotations

from devpi_core.cli import main

raise SystemExit(main())
