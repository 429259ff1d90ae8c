"""Sphinx configuration: ``sphinx-build -W -b html docs build/docs`` (no extensions needed)."""

from __future__ import annotations

import re
from pathlib import Path

_INIT = Path(__file__).resolve().parent.parent / "devpi_core" / "__init__.py"
_VERSION = re.search(r'__version__ = "([^"]+)"', _INIT.read_text(encoding="utf-8"))

project = "devpi-core"
author = "the devpi-core developers"
copyright = "the devpi-core developers"  # the name Sphinx reads
release = version = _VERSION.group(1) if _VERSION else "unknown"

extensions: list[str] = []
root_doc = "index"
exclude_patterns = ["_build"]
highlight_language = "none"
html_theme = "alabaster"
html_title = f"devpi-core {release}"
# Wide enough for the 100-column code the guides include.
html_theme_options = {"page_width": "1180px", "sidebar_width": "230px"}
