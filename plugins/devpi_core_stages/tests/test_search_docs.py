"""Stage search documents: written for data stored before they existed, once."""

from __future__ import annotations

from typing import Any

from devpi_core import search
from devpi_core.testing.memstore import MemoryStore
from devpi_core_stages import layout
from devpi_core_stages.search_docs import BUILT_KEY, build_missing, latest_metadata


def _old_data(store: MemoryStore) -> None:
    with store.write() as tx:
        tx.set("index:alice/dev", {"type": "stage", "bases": []})
        tx.set("index:root/pypi", {"type": "mirror", "mirror_url": "http://127.0.0.1:1/simple/"})
        for version, summary, yanked in (
            ("1.0", "old words", False), ("1.10", "newest words", False),
            ("2.0", "yanked words", True),
        ):
            tx.set(layout.version_key("alice/dev", "pkg", version),
                   {"metadata": {"name": "pkg", "version": version, "summary": summary},
                    "files": {}, "yanked": yanked})
        tx.set(layout.project_key("alice/dev", "pkg"), {"name": "pkg", "changes": 3})


def _names(store: MemoryStore, text: str) -> list[str]:
    with store.read() as tx:
        return [hit.name for hit in tx.search(search.SearchQuery(text, ("alice/dev",))).hits]


def test_build_missing_writes_newest_unyanked_once():
    store = MemoryStore()
    _old_data(store)
    assert _names(store, "words") == []
    assert build_missing(store) == 1
    assert _names(store, "newest") == ["pkg"]  # 1.10 sorts after 1.0; 2.0 is yanked
    assert _names(store, "yanked") == []
    serial = store.current_serial()
    assert build_missing(store) == 0  # marked as built: a restart costs one read
    assert store.current_serial() == serial
    with store.read() as tx:
        assert tx.get(BUILT_KEY) == 1
        assert not list(tx.keys(search.scope_prefix("root/pypi")))


def test_latest_metadata_all_yanked_and_none():
    records: list[tuple[str, dict[str, Any]]] = [
        ("1.0", {"metadata": {"v": 1}, "yanked": True}),
        ("0.9", {"metadata": {"v": 0}, "yanked": "reason"}),
    ]
    assert latest_metadata(records) == {"v": 1}
    assert latest_metadata([]) is None
