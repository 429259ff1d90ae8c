"""The search part of the metadata store contract (:mod:`devpi_core.search`).

``MetadataStoreContract`` (:mod:`devpi_core.testing.contracts`) includes these tests, so every
store runs them: the default scan and a store's own full-text index must rank in the same tiers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from devpi_core import search

if TYPE_CHECKING:
    from devpi_core.interfaces import MetadataStore


class _Rollback(Exception):
    """Raised inside a transaction to force a rollback."""


def _write_then_fail(store: MetadataStore) -> None:
    with store.write() as tx:
        tx.set(search.doc_key("a/dev", "ghost"),
               {"scope": "a/dev", "name": "ghost", "summary": "spooky"})
        raise _Rollback

def _put_docs(store: MetadataStore) -> None:
    with store.write() as tx:
        search.put(tx, "a/dev", "requests", {
            "name": "Requests", "version": "2.0", "summary": "HTTP for Humans",
            "description": "An elegant HTTP library with cookie persistence.\n" * 3,
        })
        search.put(tx, "a/dev", "requests-toolbelt", {"name": "requests_toolbelt",
                                                       "summary": "A utility belt"})
        search.put(tx, "a/dev", "httpx", {"name": "httpx", "keywords": "http async",
                                          "summary": "The next generation HTTP client"})
        search.put(tx, "b/dev", "grequests", {"name": "grequests", "summary": "gevent + HTTP"})
        search.put(tx, "b/dev", "unrelated", {"name": "unrelated", "summary": "nothing"})


def _found(store: MetadataStore, text: str, *scopes: str, **kwargs: int) -> list[tuple[str, int]]:
    with store.read() as tx:
        result = tx.search(search.SearchQuery(text, scopes, **kwargs))
    return [(f"{hit.scope}:{hit.name}", hit.tier) for hit in result.hits]


class SearchContract:
    """Search documents (:mod:`devpi_core.search`): every store ranks them the same way, as
    the default :func:`~devpi_core.search.scan` does."""

    def test_names_rank_before_words(self, metadata_store: MetadataStore) -> None:
        _put_docs(metadata_store)
        assert _found(metadata_store, "requests", "a/dev", "b/dev") == [
            ("a/dev:requests", 0), ("a/dev:requests-toolbelt", 1), ("b/dev:grequests", 2)]
        # words: every word must start a word of the document; names first, then by the
        # store's own relevance
        found = _found(metadata_store, "http", "a/dev", "b/dev")
        assert found[0] == ("a/dev:httpx", 1)
        assert sorted(found[1:]) == [("a/dev:requests", 3), ("b/dev:grequests", 3)]

    def test_query_name_is_normalised(self, metadata_store: MetadataStore) -> None:
        _put_docs(metadata_store)
        assert _found(metadata_store, "Requests_Toolbelt", "a/dev")[0] == (
            "a/dev:requests-toolbelt", 0)

    def test_words_match_by_prefix_and_all_must_match(self, metadata_store: MetadataStore) -> None:
        _put_docs(metadata_store)
        assert _found(metadata_store, "cook pers", "a/dev") == [("a/dev:requests", 3)]
        assert _found(metadata_store, "cookie gevent", "a/dev", "b/dev") == []
        assert _found(metadata_store, "ASYNC", "a/dev") == [("a/dev:httpx", 3)]

    def test_only_the_asked_scopes(self, metadata_store: MetadataStore) -> None:
        _put_docs(metadata_store)
        assert _found(metadata_store, "requests", "b/dev") == [("b/dev:grequests", 2)]
        assert _found(metadata_store, "requests") == []

    def test_hits_carry_marks_and_version(self, metadata_store: MetadataStore) -> None:
        _put_docs(metadata_store)
        with metadata_store.read() as tx:
            hit = tx.search(search.SearchQuery("cookie", ("a/dev",))).hits[0]
        assert hit.version == "2.0"
        assert f"{search.MARK_START}cookie{search.MARK_END}" in hit.snippet
        with metadata_store.read() as tx:
            hit = tx.search(search.SearchQuery("humans", ("a/dev",))).hits[0]
        assert hit.summary == f"HTTP for {search.MARK_START}Humans{search.MARK_END}"

    def test_paging(self, metadata_store: MetadataStore) -> None:
        with metadata_store.write() as tx:
            for n in range(25):
                search.put(tx, "a/dev", f"pkg{n:02d}", {"summary": "common words"})
        first = _found(metadata_store, "pkg", "a/dev", limit=10)
        second = _found(metadata_store, "pkg", "a/dev", limit=10, offset=10)
        assert [name for name, _ in first + second] == [f"a/dev:pkg{n:02d}" for n in range(20)]
        with metadata_store.write() as tx:
            search.put(tx, "a/dev", "helper", {"summary": "helps pkg users"})
        with metadata_store.read() as tx:
            assert tx.search(search.SearchQuery("common", ("a/dev",), limit=5)).total == 25
            # a first page of names only still counts the projects found by their words
            names_first = tx.search(search.SearchQuery("pkg", ("a/dev",), limit=5))
            assert names_first.total == 26
            assert [hit.name for hit in names_first.hits] == [f"pkg{n:02d}" for n in range(5)]

    def test_rewrite_and_drop_take_effect_in_the_transaction(
        self, metadata_store: MetadataStore
    ) -> None:
        _put_docs(metadata_store)
        with metadata_store.write() as tx:
            search.put(tx, "a/dev", "httpx", {"name": "httpx", "summary": "now about turtles"})
            search.drop(tx, "b/dev", "grequests")
            assert [h.name for h in tx.search(search.SearchQuery("turtles", ("a/dev",))).hits] == [
                "httpx"]
        assert _found(metadata_store, "generation", "a/dev") == []
        assert _found(metadata_store, "gevent", "b/dev") == []
        with metadata_store.write() as tx:
            search.drop_scope(tx, "a/dev")
        assert _found(metadata_store, "http", "a/dev", "b/dev") == []

    def test_rolled_back_documents_are_not_found(self, metadata_store: MetadataStore) -> None:
        with pytest.raises(_Rollback):
            _write_then_fail(metadata_store)
        assert _found(metadata_store, "spooky", "a/dev") == []
        assert _found(metadata_store, "ghost", "a/dev") == []

    def test_query_syntax_is_text(self, metadata_store: MetadataStore) -> None:
        _put_docs(metadata_store)
        for text in ('"', "AND OR NOT", "http*", "-", "NEAR(http)", "summary:http", "^"):
            _found(metadata_store, text, "a/dev")  # no error: operators are plain words
        assert _found(metadata_store, 'http" OR "gevent', "a/dev", "b/dev") == []
