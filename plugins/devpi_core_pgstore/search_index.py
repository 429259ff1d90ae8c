"""Full-text search on PostgreSQL: the ``search_doc`` rows of the search documents, and the
queries that rank them (:mod:`devpi_core.search`).

A document's words are split by :func:`devpi_core.search.words` (the words SQLite's
unicode61 tokenizer makes) and handed to ``to_tsvector('simple', ...)`` already split, so
both stores agree on what a word is. Names are matched by the ``(scope, name)`` B-tree
(exact name, prefix) and ``pg_trgm``'s GIN index (substring); words by the GIN index of
``tsv`` with ``ts_rank`` weighted as :data:`devpi_core.search.WEIGHTS`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from devpi_core import search

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    import psycopg

    Conn = psycopg.Connection[tuple[Any, ...]]

COLUMNS = ("key", "scope", "name", "title", "version", "summary", "keywords", "description")
_WORDS = ("wa", "wb", "wd")
_HIT_FIELDS = ("scope", "name", "title", "version", "summary", "description")
# ts_rank's weights are {D, C, B, A}, at most 1: title A, summary and keywords B,
# description D, in the proportions of search.WEIGHTS.
_TOP = max(search.WEIGHTS)
RANK_WEIGHTS = "{%g,0,%g,%g}" % (  # noqa: UP031 - a PostgreSQL array literal
    search.WEIGHTS[3] / _TOP, search.WEIGHTS[1] / _TOP, search.WEIGHTS[0] / _TOP)
_MAX_CHAR = "\U0010ffff"
# The scope test beside a word or trigram match, kept out of the (scope, name) index on
# purpose: nearly every document is in the searched scopes, and after a bulk write (before
# autovacuum's ANALYZE) the planner would read all of them through that index instead of
# asking the GIN index (seen: 300 ms instead of 2 ms at 20,000 documents).
_IN_SCOPES = "(scope || '') = ANY(%s)"


def row(key: str, doc: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``search_doc`` row of document ``key``: its fields, then its words per weight."""
    fields = {name: str(doc.get(name) or "").replace("\x00", " ") for name in COLUMNS[1:]}
    title = fields["title"] or fields["name"]
    return (
        key, *fields.values(),
        " ".join(search.words(title)),
        " ".join(search.words(f"{fields['summary']} {fields['keywords']}")),
        " ".join(search.words(fields["description"])),
    )


def upsert_sql(table: str) -> str:
    """One statement writing many rows (each argument an array, one per column of row())."""
    names = (*COLUMNS, *_WORDS)
    arrays = ", ".join("%b::text[]" for _ in names)  # binary: see pg_store's flush
    updates = ", ".join(f"{name} = excluded.{name}" for name in (*COLUMNS[1:], "tsv"))
    return (
        f"INSERT INTO {table} ({', '.join(COLUMNS)}, tsv) "  # noqa: S608 - fixed names
        f"SELECT {', '.join(COLUMNS)}, setweight(to_tsvector('simple', wa), 'A')"
        " || setweight(to_tsvector('simple', wb), 'B') || setweight(to_tsvector('simple', wd), 'D')"
        f" FROM unnest({arrays}) AS u({', '.join(names)})"
        f" ON CONFLICT (key) DO UPDATE SET {updates}"
    )


def write(conn: Conn, table: str, rows: Sequence[tuple[str, ...]], deleted: Iterable[str]) -> None:
    """Write ``rows`` (from :func:`row`) and remove the documents ``deleted``."""
    gone = list(deleted)
    if gone:
        conn.execute(f"DELETE FROM {table} WHERE key = ANY(%s)", (gone,))  # noqa: S608
    if rows:
        columns = [list(column) for column in zip(*rows, strict=True)]
        conn.execute(upsert_sql(table).encode(), columns)


def backfill(conn: Conn, schema: str) -> int:
    """Index the search documents of ``kv`` (tables made before search was indexed)."""
    rows = [
        row(key, json.loads(value))
        for key, value in conn.execute(
            f"SELECT key, value FROM {schema}.kv WHERE key >= %s AND key < %s",  # noqa: S608
            (search.PREFIX, search.PREFIX + _MAX_CHAR),
        )
    ]
    for start in range(0, len(rows), 1000):
        write(conn, f"{schema}.search_doc", rows[start:start + 1000], ())
    return len(rows)


def tsquery(terms: Sequence[str]) -> str:
    """Every term as the start of a word, all required: never query syntax (a term is
    letters and digits only, as :func:`devpi_core.search.words` makes them)."""
    return " & ".join(f"'{term}':*" for term in terms)


def _like(needle: str) -> str:
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class Searcher:
    """Queries over one store's ``search_doc`` table, on one connection (in its transaction)."""

    def __init__(self, conn: Conn, table: str) -> None:
        self.conn = conn
        self.table = table

    def _run(self, sql: str, args: Sequence[object]) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql.encode(), args).fetchall()

    def find(self, query: search.SearchQuery) -> search.SearchResult:
        """Names from the B-tree and trigram indexes, words from the GIN index of ``tsv``;
        the documents of the shown page only are read."""
        if not query.scopes:
            return search.SearchResult([], 0)
        names = search.order(self._name_matches(query))
        if query.words and len(names) >= query.offset + query.limit:
            # the page holds names only: the word matches are counted, not ranked
            shown = search.result(names, query, self._documents)
            total = min(search.MAX_MATCHES, shown.total + self._word_count(query))
            return search.SearchResult(shown.hits, total)
        found = [*names, *self._word_matches(query)]
        return search.result(search.order(found), query, self._documents)

    def _name_matches(self, query: search.SearchQuery) -> list[search.Candidate]:
        needle, scopes = query.needle, list(query.scopes)
        if not needle:
            return []
        limit = search.MAX_MATCHES
        rows = self._run(  # exact names and prefixes: a range of the (scope, name) index
            f"SELECT scope, name FROM {self.table} WHERE scope = ANY(%s)"  # noqa: S608
            " AND name >= %s AND name < %s LIMIT %s",
            (scopes, needle, needle + _MAX_CHAR, limit),
        )
        # substrings: the trigram index (three characters and more), else read the names
        condition = "name LIKE %s" if len(needle) >= 3 else "strpos(name, %s) > 0"
        rows += self._run(
            f"SELECT scope, name FROM {self.table} WHERE {_IN_SCOPES}"  # noqa: S608
            f" AND {condition} LIMIT %s",
            (scopes, _like(needle) if len(needle) >= 3 else needle, limit),
        )
        found = []
        for scope, name in rows:
            tier = search.name_tier(needle, name)
            if tier is not None:
                found.append(search.Candidate(scope, name, tier))
        return found

    def _word_matches(self, query: search.SearchQuery) -> list[search.Candidate]:
        if not query.words:
            return []
        rows = self._run(
            f"SELECT scope, name, ts_rank(%s, tsv, q) AS r FROM {self.table},"  # noqa: S608
            f" to_tsquery('simple', %s) AS q WHERE tsv @@ q AND {_IN_SCOPES}"
            " ORDER BY r DESC LIMIT %s",
            (RANK_WEIGHTS, tsquery(query.words), list(query.scopes), search.MAX_MATCHES),
        )
        tier = search.TEXT_TIER
        return [search.Candidate(scope, name, tier, float(rank)) for scope, name, rank in rows]

    def _word_count(self, query: search.SearchQuery) -> int:
        """How many projects match the words but not the name (those are counted already)."""
        rows = self._run(
            f"SELECT count(*) FROM {self.table} WHERE tsv @@ to_tsquery('simple', %s)"  # noqa: S608
            f" AND {_IN_SCOPES} AND strpos(name, %s) = 0",
            (tsquery(query.words), list(query.scopes), query.needle or "\n"),
        )
        return int(rows[0][0])

    def _documents(
        self, shown: list[search.Candidate]
    ) -> dict[tuple[str, str], Mapping[str, Any]]:
        keys = [search.doc_key(c.scope, c.name) for c in shown]
        rows = self._run(
            f"SELECT {', '.join(_HIT_FIELDS)} FROM {self.table} WHERE key = ANY(%s)",  # noqa: S608
            (keys,),
        )
        docs = [dict(zip(_HIT_FIELDS, found, strict=True)) for found in rows]
        return {(doc["scope"], doc["name"]): doc for doc in docs}
