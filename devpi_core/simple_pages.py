"""Simple pages, assembled over bases and rendered once per change.

A rendered page is cached per (index, project, format, link prefix, resolution order) together
with the token of everything that fed it: the configurations in the resolution order, each
contributing index's :meth:`~devpi_core.indextypes.IndexType.page_token` and the policies' cache
keys. A request at an unchanged serial, within every mirror's freshness, is answered from the
cache without touching any index; otherwise the token is recomputed and only a changed token
re-renders. No per-version work happens on the warm path.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from devpi_core import simple_render
from devpi_core.errors import NotFound
from devpi_core.held import NOTHING_HELD, DecisionCache, ServePolicies, refuse_if_held, without_held
from devpi_core.indextypes import merge_links
from devpi_core.model.resolve import Reader, Resolver
from devpi_core.page_bodies import Body, make_body
from devpi_core.records import status_over_bases

if TYPE_CHECKING:
    from collections.abc import Hashable, Iterator, Mapping, Sequence

    from devpi_core.indextypes import IndexType
    from devpi_core.interfaces import MetadataStore, SimplePolicy
    from devpi_core.model.indexes import Indexes
    from devpi_core.plugins import Plugins
    from devpi_core.records import IndexRecord, Link, ProjectStatus

HTML = "html"
JSON = "json"


GZIP_MIN = 1024
# Renders at once. A render is Python work under the GIL, so more of them in parallel finish
# no sooner; but each holds the links of its page and the page being built (a few kilobytes
# per listed file), and uv asks for dozens of cold pages at once: this bounds the memory.
_RENDERING = threading.BoundedSemaphore(2)

try:
    # Intel ISA-L: on the simple pages of a 91-project lock, level 1 compresses 470 MB/s with
    # 24% of the bytes left, where zlib's level 1 does 97 MB/s with 27%
    from isal.igzip import compress as gzip_compress
except ImportError:  # a platform without its wheels
    from gzip import compress as gzip_compress  # type: ignore[assignment]


@dataclass
class Page:
    """A rendered page: body, strong ETag, and (for bodies worth it) a gzip variant."""

    body: Body
    etag: str
    content_type: str
    gzipped: Body | None = field(default=None, repr=False)

    @classmethod
    def make(cls, body: bytes, content_type: str, spill_dir: str | None = None) -> Page:
        """Render-time construction: hash once, compress once, large bodies to a file."""
        gz = gzip_compress(body, compresslevel=1, mtime=0) if len(body) >= GZIP_MIN else None
        return cls(
            make_body(body, spill_dir),
            _etag(body),
            content_type,
            None if gz is None else make_body(gz, spill_dir),
        )

    @property
    def cost(self) -> int:
        """Bytes of memory this page holds."""
        return self.body.memory + (self.gzipped.memory if self.gzipped else 0)

    @property
    def disk(self) -> int:
        """Bytes of temp files this page holds."""
        return self.body.disk + (self.gzipped.disk if self.gzipped else 0)


@dataclass
class Served:
    """What a view needs to answer: the page, warnings about stale upstream data, the serial."""

    page: Page
    warnings: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()
    serial: int = 0
    max_age: float | None = None


@dataclass
class _Entry:
    token: Hashable
    page: Page
    serial: int
    fresh_until: float
    warnings: tuple[str, ...]
    blocked: tuple[str, ...]
    policy_keys: tuple[Hashable, ...]


class PageCache:
    """A least-recently-used cache of rendered pages, bounded in memory and in temp files."""

    def __init__(self, max_bytes: int, max_disk: int = 0) -> None:
        self.max_bytes = max_bytes
        self.max_disk = max_disk
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._bytes = 0
        self._disk = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> _Entry | None:
        """The entry under ``key``, marked as recently used."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: Hashable, entry: _Entry) -> None:
        """Store ``entry``; evict the least recently used beyond the byte budget."""
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.page.cost
                self._disk -= old.page.disk
            if entry.page.cost > self.max_bytes or entry.page.disk > self.max_disk:
                return
            self._entries[key] = entry
            self._bytes += entry.page.cost
            self._disk += entry.page.disk
            while (self._bytes > self.max_bytes or self._disk > self.max_disk) and self._entries:
                _key, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.page.cost
                self._disk -= evicted.page.disk


def _etag(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return f'"{digest.hexdigest()[:32]}"'


class SimplePages:
    """Builds and caches the simple pages of every index."""

    def __init__(
        self,
        store: MetadataStore,
        indexes: Indexes,
        plugins: Plugins,
        *,
        max_bytes: int,
        max_disk: int = 0,
        spill_dir: str | None = None,
    ) -> None:
        self.store = store
        self.indexes = indexes
        self.plugins = plugins
        self.resolver = Resolver(indexes)
        self.cache = PageCache(max_bytes, max_disk if spill_dir else 0)
        self.spill_dir = spill_dir
        self._with_policies = plugins.implements("devpi_simple_policies")
        # the serve policies (devpi_serve_policies): set by the app once plugins have started
        self.serve = ServePolicies(())
        self.decisions = DecisionCache()

    def lookup(self, fullname: str, serial: int | None = None) -> IndexRecord:
        """The index ``user/name`` (cached per serial), or a 404."""
        gen = self.resolver.sync(self.store.current_serial() if serial is None else serial)
        record = self.resolver.record(gen, fullname)
        if record is None:
            raise NotFound(f"no index {fullname!r}")
        return record

    def cached_public_page(
        self, fullname: str, project: str, *, fmt: str, prefix: str
    ) -> Served | None:
        """The cached, still valid page of ``project`` if ``fullname`` and all its bases are
        public; None otherwise (then :meth:`project_page` does the full work).

        This is the whole warm path: one serial read and a few dictionary lookups.
        """
        serial = self.store.current_serial()
        gen = self.resolver.sync(serial)
        record = self.resolver.record(gen, fullname)
        if record is None:
            return None
        order = self.resolver.public_order(gen, record)
        if order is None:
            return None
        _policies, policy_keys, max_age = self._policies(record, project, order)
        entry = self._valid_entry(
            self._key(record, project, fmt, prefix, order), serial, policy_keys
        )
        if entry is None:
            return None
        return Served(entry.page, entry.warnings, entry.blocked, serial, max_age)

    @staticmethod
    def _key(
        record: IndexRecord, project: str, fmt: str, prefix: str, order: Sequence[IndexRecord]
    ) -> Hashable:
        return (record.fullname, project, fmt, prefix, tuple(r.fullname for r in order))

    def _policies(
        self, record: IndexRecord, project: str, order: Sequence[IndexRecord]
    ) -> tuple[list[SimplePolicy], tuple[Hashable, ...], float | None]:
        # Policies may change their answer without any write (a minimum release age does as
        # time passes), so their keys are checked on every request; the hook is skipped
        # entirely when no plugin implements it.
        policies = self.plugins.simple_policies(record) if self._with_policies else []
        serve_keys, max_age = self.serve.state(order, project)
        keys = tuple(policy.cache_key(record, project) for policy in policies)
        return policies, keys + serve_keys, max_age

    def held(
        self, record: IndexRecord, project: str, *, reader: Reader, serial: int | None = None
    ) -> Mapping[str, str]:
        """``{version: message}`` of what ``record`` holds back of ``project``: the serve
        policies' decision for it and for the bases it serves the version from, taken once per
        serial and policy keys."""
        if not self.serve.policies:
            return NOTHING_HELD
        if serial is None:
            serial = self.store.current_serial()
        order = self.resolver.order(self.resolver.sync(serial), record, reader)
        if not self.serve.any_active(order):
            return NOTHING_HELD
        return self._held(record, project, order, serial)

    def check_file(
        self, record: IndexRecord, project: str, version: str | None, *, reader: Reader
    ) -> None:
        """Raise the 403 of a file of a held version (an O(1) lookup once decided)."""
        if version is not None and self.serve.policies:
            refuse_if_held(self.held(record, project, reader=reader), version)

    def _held(
        self,
        record: IndexRecord,
        project: str,
        order: Sequence[IndexRecord],
        serial: int,
        stages: Sequence[IndexRecord] | None = None,
        links: Sequence[Link] | None = None,
    ) -> Mapping[str, str]:
        key = (record.fullname, project, tuple(r.fullname for r in order))
        keys, _max_age = self.serve.state(order, project)
        found = self.decisions.get(key, serial, keys)
        if found is not None:
            return found
        if stages is None:
            stages = self.resolver.contributors(order, project).stages
        if links is None:  # the links the page offers (see _served_links)
            links = self._status_and_links(record, project, stages)[0]
        mirrors = frozenset(r.fullname for r in stages if self.indexes.is_mirror(r))
        held = dict(self.serve.decide(record, project, links, mirrors))
        for base in stages:
            if base != record and self.serve.active(base):
                held.update(self._held_by_base(base, project, links, mirrors, held))
        # deciding may move the policies' keys on (the next eligibility time): store the new ones
        self.decisions.put(key, serial, self.serve.state(order, project)[0], held)
        return held or NOTHING_HELD

    def _held_by_base(
        self,
        base: IndexRecord,
        project: str,
        links: Sequence[Link],
        mirrors: frozenset[str],
        held: Mapping[str, str],
    ) -> dict[str, str]:
        # what a base with rules holds stays held on the indexes over it, for the versions they
        # serve only through that base (their own upload of a version is theirs to judge)
        # (a cold path: once per decision)
        names = {r.fullname for r in self.indexes.resolution_order(base)}
        through = [link for link in links if link.stage in names]
        decided = self.serve.decide(base, project, through, mirrors & names)
        return {
            version: message
            for version, message in decided.items()
            if version not in held
            and all(link.stage in names for link in links if link.version == version)
        }

    def _valid_entry(
        self, key: Hashable, serial: int, policy_keys: tuple[Hashable, ...]
    ) -> _Entry | None:
        entry = self.cache.get(key)
        if (
            entry is not None
            and entry.serial == serial
            and entry.policy_keys == policy_keys
            and time.time() < entry.fresh_until
        ):
            return entry
        return None

    def project_page(
        self,
        record: IndexRecord,
        project: str,
        *,
        fmt: str,
        prefix: str,
        reader: Reader,
        serial: int | None = None,
    ) -> Served:
        """The page of ``project`` on ``record`` (merged over its bases), or a 404.

        ``serial`` is the store's current serial if the caller just read it.
        """
        if serial is None:
            serial = self.store.current_serial()
        gen = self.resolver.sync(serial)
        order = self.resolver.order(gen, record, reader)
        key = self._key(record, project, fmt, prefix, order)
        policies, policy_keys, max_age = self._policies(record, project, order)
        valid = self._valid_entry(key, serial, policy_keys)
        if valid is not None:
            return Served(valid.page, valid.warnings, valid.blocked, serial, max_age)
        entry = self.cache.get(key)
        contributors = self.resolver.contributors(order, project)
        if not contributors.stages:
            raise NotFound(f"no project {project!r} on {record.fullname} or its bases")
        token = (
            tuple((r.fullname, r.serial) for r in order),
            tuple(r.fullname for r in contributors.stages),
            contributors.tokens,
            policy_keys,
        )
        warnings = tuple(
            w
            for r in contributors.stages
            if (w := self.indexes.type_of(r).page_warning(project)) is not None
        )
        if entry is None or entry.token != token:
            with _RENDERING:
                served = self._served_links(record, project, order, serial, contributors.stages)
                page = self._render(record, project, served, policies, fmt=fmt, prefix=prefix)
            # rendering may move the serve policies' keys on (see ServePolicy.state)
            _policies, policy_keys, max_age = self._policies(record, project, order)
            token = (*token[:3], policy_keys)
        else:
            page = entry.page
        self.cache.put(
            key,
            _Entry(
                token,
                page,
                serial,
                contributors.fresh_until,
                warnings,
                contributors.blocked,
                policy_keys,
            ),
        )
        return Served(page, warnings, contributors.blocked, serial, max_age)

    def _served_links(
        self,
        record: IndexRecord,
        project: str,
        order: Sequence[IndexRecord],
        serial: int,
        stages: Sequence[IndexRecord],
    ) -> tuple[Sequence[Link], ProjectStatus]:
        """The links a page offers and the project's status over ``stages``: PEP 792 over bases
        (:func:`~devpi_core.records.status_over_bases`): a quarantine withholds the files of
        the index that declares it, an index's own files only its own quarantine does."""
        links, status = self._status_and_links(record, project, stages)
        if not self.serve.any_active(order):
            return links, status
        held = self._held(record, project, order, serial, stages, links)
        return without_held(links, held), status

    def _status_and_links(
        self, record: IndexRecord, project: str, stages: Sequence[IndexRecord]
    ) -> tuple[Sequence[Link], ProjectStatus]:
        # (a cold path: once per rendered page or decision)
        types = {r.fullname: self.indexes.type_of(r) for r in stages}
        over = status_over_bases(
            record.fullname, [(name, t.project_status(project)) for name, t in types.items()]
        )
        if over.status.serves_no_files:
            return [], over.status
        served = [t for name, t in types.items() if name not in over.withheld]
        return merge_links([t.links(project) for t in served]), over.status

    def _render(
        self,
        record: IndexRecord,
        project: str,
        served: tuple[Sequence[Link], ProjectStatus],
        policies: Sequence[SimplePolicy],
        *,
        fmt: str,
        prefix: str,
    ) -> Page:
        links, status = served
        for policy in policies:
            links = list(policy.filter(record, project, links))
        if fmt == JSON:
            body = simple_render.project_json(project, links, prefix, record.fullname, status)
            ctype = simple_render.JSON_TYPE
        else:
            body = simple_render.project_html(
                f"{record.fullname}: links for {project}", links, prefix, record.fullname, status
            )
            ctype = "text/html; charset=utf-8"
        return Page.make(body, ctype, self.spill_dir)

    def project_names(
        self,
        record: IndexRecord,
        *,
        reader: Reader,
    ) -> tuple[Iterator[str], str | None]:
        """Every project name on ``record`` and its bases (each once), and an ETag if the
        list can be identified cheaply."""
        gen = self.resolver.sync(self.store.current_serial())
        order = self.resolver.order(gen, record, reader)
        types = [self.indexes.type_of(r) for r in order]
        tokens = [t.names_token() for t in types]
        etag = None
        if all(token is not None for token in tokens):
            etag = _etag(
                repr([(r.fullname, r.serial) for r in order]).encode(), repr(tokens).encode()
            )
        return _unique_names(types), etag


def _unique_names(types: Sequence[IndexType]) -> Iterator[str]:
    # Private lists are small; a mirror's (always last) may hold hundreds of thousands of names
    # and is streamed, checked only against the names seen before it, never collected.
    seen: set[str] = set()
    for position, index_type in enumerate(types):
        last = position == len(types) - 1
        for name in index_type.project_names():
            if name not in seen:
                if not last:
                    seen.add(name)
                yield name
