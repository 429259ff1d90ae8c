"""Security tests: each reproduces one attack from the security issue and checks the defence."""

from __future__ import annotations
