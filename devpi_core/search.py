"""Full-text search documents: one per project and index, kept with the write that changes it.

An index type writes a project's document (:func:`put`) in the same write transaction that
changes the project, so search never lags behind the data and needs no background indexer.
Documents are ordinary keys under ``search:<scope>:<name>`` (``scope`` is the index,
``user/name``), so they travel with the store's serials, transactions and copies.

The metadata store answers queries through :meth:`ReadTransaction.search
<devpi_core.interfaces.ReadTransaction.search>`. Its default, :func:`scan`, reads every
document in the asked scopes; a store with a full-text engine overrides it (the SQLite store
uses FTS5) and must rank in the same tiers:

1. tier 0: the PEP 503-normalised query is the project's name;
2. tier 1: the name starts with it; tier 2: the name contains it;
3. tier 3: every word of the query starts a word of the title, summary, keywords or
   description, ordered by the store's measure of relevance (title and summary weighing
   most: :data:`WEIGHTS`).

Matched words in ``summary`` and ``snippet`` are wrapped in :data:`MARK_START` /
:data:`MARK_END`, characters that cannot occur in metadata shown as text, so a view escapes
the text first and turns the markers into ``<mark>`` after.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devpi_core.model.names import normalize

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from devpi_core.interfaces import ReadTransaction, WriteTransaction

PREFIX = "search:"
MARK_START = "\x02"
MARK_END = "\x03"
# Bounds: what one document may cost the index, and what one query may return.
MAX_FIELD = 512
MAX_DESCRIPTION = 64 * 1024
MAX_MATCHES = 1000
NAME_TIERS = 3
TEXT_TIER = 3
FIELDS = ("title", "summary", "keywords", "description")
# Relevance weights per field, in FIELDS order (the SQLite store's bm25() uses the same).
WEIGHTS = (10.0, 5.0, 5.0, 1.0)
# Letters and digits in any script: the words SQLite FTS5's unicode61 tokenizer makes.
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


@dataclass(frozen=True)
class SearchQuery:
    """What to look for (as typed), in which indexes, and which page of the hits."""

    text: str
    scopes: tuple[str, ...]
    limit: int = 20
    offset: int = 0

    @property
    def needle(self) -> str:
        """The query as a PEP 503 project name, for name matches ("" if it has no name)."""
        return normalize(self.text.strip()).strip("-")

    @property
    def words(self) -> list[str]:
        """The query's words, lower case, for text matches."""
        return words(self.text)[:16]


@dataclass(frozen=True)
class SearchHit:
    """A project found on an index; ``summary``/``snippet`` carry the match markers."""

    scope: str
    name: str
    title: str
    tier: int
    score: float
    summary: str
    snippet: str = ""
    version: str = ""


@dataclass(frozen=True)
class SearchResult:
    """One page of hits, best first, and how many there are in all (at most MAX_MATCHES)."""

    hits: list[SearchHit]
    total: int


def words(text: str) -> list[str]:
    """The words of ``text``, lower case (runs of letters and digits in any script)."""
    return [word.casefold() for word in _WORD.findall(text)]


def doc_key(scope: str, name: str) -> str:
    """Where the document of project ``name`` on index ``scope`` is kept."""
    return f"{PREFIX}{scope}:{name}"


def scope_prefix(scope: str) -> str:
    """Every document of index ``scope``."""
    return f"{PREFIX}{scope}:"


def _clean(value: object, limit: int) -> str:
    text = value if isinstance(value, str) else ""
    return _CONTROL.sub(" ", text)[:limit]


def _keywords(value: object) -> str:
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value)
    return _clean(value, MAX_FIELD)


def put(tx: WriteTransaction, scope: str, name: str, metadata: Mapping[str, Any]) -> None:
    """Write (or rewrite) the document of ``name`` from a version's core ``metadata``.

    ``metadata`` uses the names devpi keeps (``name``, ``summary``, ``keywords``,
    ``description``); missing ones are empty. Writing an equal document is not a change.
    """
    doc = {
        "scope": scope,
        "name": name,
        "title": _clean(metadata.get("name") or name, MAX_FIELD),
        "version": _clean(metadata.get("version"), MAX_FIELD),
        "summary": _clean(metadata.get("summary"), MAX_FIELD),
        "keywords": _keywords(metadata.get("keywords")),
        "description": _clean(metadata.get("description"), MAX_DESCRIPTION),
    }
    tx.set(doc_key(scope, name), doc)


def drop(tx: WriteTransaction, scope: str, name: str) -> None:
    """Remove the document of ``name`` (the project is gone from ``scope``)."""
    tx.delete(doc_key(scope, name))


def drop_scope(tx: WriteTransaction, scope: str) -> None:
    """Remove every document of index ``scope`` (the index is deleted)."""
    for key in list(tx.keys(scope_prefix(scope))):
        tx.delete(key)


def name_tier(needle: str, name: str) -> int | None:
    """0 for the exact name, 1 for a prefix, 2 for a substring, None if ``name`` lacks it."""
    if not needle:
        return None
    if name == needle:
        return 0
    if name.startswith(needle):
        return 1
    return 2 if needle in name else None


def mark(text: str, terms: Iterable[str]) -> str:
    """``text`` with every word that starts with one of ``terms`` wrapped in the markers."""
    prefixes = tuple(t for t in terms if t)
    if not prefixes:
        return text

    def wrap(match: re.Match[str]) -> str:
        word = match.group(0)
        if word.casefold().startswith(prefixes):
            return f"{MARK_START}{word}{MARK_END}"
        return word

    return _WORD.sub(wrap, text)


def mark_name(title: str, needle: str) -> str:
    """``title`` with the part that matched the normalised ``needle`` marked (if it can be
    found: the title is the display name, the needle is normalised)."""
    pattern = "[-_.]+".join(re.escape(part) for part in needle.split("-") if part)
    found = re.search(pattern, title, re.IGNORECASE) if pattern else None
    if found is None:
        return title
    start, end = found.span()
    return f"{title[:start]}{MARK_START}{title[start:end]}{MARK_END}{title[end:]}"


def snippet(text: str, terms: list[str], width: int = 160) -> str:
    """About ``width`` characters of ``text`` around the first marked word, marked."""
    prefixes = tuple(terms)
    for found in _WORD.finditer(text):
        if found.group(0).casefold().startswith(prefixes):
            start = max(0, found.start() - width // 3)
            piece = " ".join(text[start:start + width].split())
            lead = "…" if start else ""
            tail = "…" if start + width < len(text) else ""
            return lead + mark(piece, terms) + tail
    return ""


@dataclass(frozen=True)
class Candidate:
    """A match before its document is read: enough to rank it."""

    scope: str
    name: str
    tier: int
    score: float = 0.0


def rank_key(item: Candidate | SearchHit) -> tuple[int, float, str, str]:
    """How hits sort: name tiers, then relevance, then name and index."""
    return (item.tier, -item.score, item.name, item.scope)


def order(found: Iterable[Candidate]) -> list[Candidate]:
    """Best first, each project of an index once (its best tier): name tiers, then relevance,
    then name and index; at most MAX_MATCHES."""
    best: dict[tuple[str, str], Candidate] = {}
    for item in found:
        key = (item.scope, item.name)
        if key not in best or (item.tier, -item.score) < (best[key].tier, -best[key].score):
            best[key] = item
    ranked = sorted(best.values(), key=rank_key)
    return ranked[:MAX_MATCHES]


def result(
    ranked: list[Candidate],
    query: SearchQuery,
    documents: Callable[[list[Candidate]], Mapping[tuple[str, str], Mapping[str, Any]]],
) -> SearchResult:
    """The requested page of ``ranked``: only its documents are read (``documents`` maps
    ``(scope, name)`` to each) and marked."""
    shown = ranked[query.offset:query.offset + query.limit]
    docs = documents(shown) if shown else {}
    hits = [
        hit_of(docs.get((c.scope, c.name), {"scope": c.scope, "name": c.name}), c.tier, c.score,
               query.words, query.needle)
        for c in shown
    ]
    return SearchResult(hits, len(ranked))


def _text_score(doc: Mapping[str, Any], terms: list[str]) -> float:
    """A relevance score if every term starts a word of the document, else 0."""
    fields = [words(str(doc.get(field) or "")) for field in FIELDS]
    score = 0.0
    for term in terms:
        found = 0.0
        for weight, tokens in zip(WEIGHTS, fields, strict=True):
            found += weight * sum(1 for token in tokens if token.startswith(term))
        if not found:
            return 0.0
        score += found
    return score


def hit_of(
    doc: Mapping[str, Any], tier: int, score: float, terms: list[str], needle: str
) -> SearchHit:
    """A hit for ``doc`` with the marks a view shows."""
    title = str(doc.get("title") or doc.get("name") or "")
    summary = str(doc.get("summary") or "")
    text = tier == TEXT_TIER
    return SearchHit(
        scope=str(doc.get("scope") or ""),
        name=str(doc.get("name") or ""),
        title=mark(title, terms) if text else mark_name(title, needle),
        tier=tier,
        score=score,
        summary=mark(summary, terms),
        snippet=snippet(str(doc.get("description") or ""), terms) if text else "",
        version=str(doc.get("version") or ""),
    )


def scan(tx: ReadTransaction, query: SearchQuery) -> SearchResult:
    """The reference implementation: read every document of the asked scopes.

    Correct for any store, and linear in the number of documents: stores that hold many
    projects override :meth:`ReadTransaction.search` with an index of their own.
    """
    needle, terms = query.needle, query.words
    found: list[Candidate] = []
    docs: dict[tuple[str, str], Mapping[str, Any]] = {}
    for scope in query.scopes:
        for _key, doc in tx.items(scope_prefix(scope)):
            name = str(doc.get("name") or "")
            tier = name_tier(needle, name)
            score = 0.0
            if tier is None and terms:
                score = _text_score(doc, terms)
                tier = TEXT_TIER if score else None
            if tier is not None:
                found.append(Candidate(scope, name, tier, score))
                docs[scope, name] = doc
    return result(order(found), query, lambda _shown: docs)
