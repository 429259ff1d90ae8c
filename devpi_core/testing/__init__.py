"""Test support for devpi-core and its plugins: contracts, fixtures, a fake upstream."""

from __future__ import annotations
