"""What this plugin's tests load: the plugin itself and the plugins it needs, nothing else."""

from __future__ import annotations

import pytest


@pytest.fixture
def plugins_needed() -> tuple[str, ...]:
    """Stages store in the fsstore backends; uploads need a logged-in (passwd) user."""
    return ("stages", "fsstore", "passwd")
