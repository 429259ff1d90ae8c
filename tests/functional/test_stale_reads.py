"""Reads never lie across nodes: a node whose serial lags answers 404 only after re-reading.

Two apps share one SQLite file (two nodes of one store); node B's cached serial is made to lag
for a minute (the bound is 50 ms, stretched so the test does not race the clock).
"""

from __future__ import annotations

import pytest
from devpi_core_fsstore import sqlite_store

from devpi_core.testing.dists import DistSpec, make_wheel

WHEEL = "pkg-1.0-py3-none-any.whl"


@pytest.fixture
def nodes(make_app, tmp_path, monkeypatch):
    config = {"plugins": {"fsstore": {"sqlite_path": str(tmp_path / "shared.sqlite")}}}
    node_a, node_b = make_app(config), make_app(config)
    node_a.create_and_login("alice")
    node_a.create_index("alice/dev")
    node_b.auth = node_a.auth
    monkeypatch.setattr(sqlite_store, "SERIAL_REFRESH", 60.0)
    return node_a, node_b


def test_a_new_index_is_found_on_the_other_node_at_once(nodes):
    node_a, node_b = nodes
    node_b.get("/alice/new/+simple/pkg/", status=404)  # B cached "no such index" at serial S
    node_a.create_index("alice/new")
    node_a.upload("alice/new", make_wheel(DistSpec("pkg", "1.0")))
    assert node_b.simple_filenames("alice/new", "pkg") == [WHEEL]


def test_a_new_file_is_found_on_the_other_node_at_once(nodes):
    node_a, node_b = nodes
    node_b.get("/alice/dev/+simple/pkg/", status=404)
    node_b.get_json("/alice/dev/pkg", status=404)
    node_a.upload("alice/dev", make_wheel(DistSpec("pkg", "1.0")))
    assert node_b.simple_filenames("alice/dev", "pkg") == [WHEEL]
    assert "1.0" in node_b.get_json("/alice/dev/pkg")["result"]


def test_something_that_does_not_exist_is_still_a_404(nodes):
    _node_a, node_b = nodes
    node_b.get("/alice/dev/+simple/nothing/", status=404)
    node_b.get("/alice/missing", status=404)
