"""The ``mirror`` index type and the ``simple`` mirror source (being built)."""

from __future__ import annotations
