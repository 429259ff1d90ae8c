"""What this plugin's tests load: the plugin itself and the plugins it needs, nothing else."""

from __future__ import annotations

import pytest


@pytest.fixture
def plugins_needed() -> tuple[str, ...]:
    """Users are stored in the fsstore backend."""
    return ("passwd", "fsstore")
