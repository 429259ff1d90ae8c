"""Project descriptions rendered as PyPI renders them: ``readme_renderer``, sanitised, cached.

Every ``Description-Content-Type`` PyPI accepts is rendered with the library PyPI and twine
use: ``text/x-rst`` (also when the type is missing, as on PyPI), ``text/markdown`` (``GFM``
by default, or ``CommonMark``; fenced code highlighted by Pygments into classes the
stylesheet colours) and ``text/plain``. ``readme_renderer`` cleans its output with nh3 (no
script, no event handler, no ``javascript:`` URL); on top of that images lose their source,
because the pages' Content-Security-Policy loads no image from elsewhere and a README's
relative image means nothing on this server.

A description that cannot be rendered (invalid reStructuredText, an unknown type, too large)
is shown as plain text with a note saying why: never an error page.

Rendering reStructuredText costs milliseconds to seconds, so each description is rendered
once: at upload (``devpi_on_upload``) or, for mirrored projects and older uploads, on first
view. The result is kept under the digest of what went in (renderer version, content type,
text) in the metadata store (key ``webui:readme:<sha256>``) and in a small in-process cache.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from email.message import Message
from typing import TYPE_CHECKING, Any

import nh3
from readme_renderer import clean as rr_clean
from readme_renderer import markdown as rr_markdown
from readme_renderer import rst as rr_rst
from readme_renderer import txt as rr_txt

from devpi_core import services

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pyramid.registry import Registry

    from devpi_core.records import UploadEvent
    from devpi_core.services import ServiceRegistry

log = logging.getLogger(__name__)

# Part of every cache key: bump it when the output of render() changes for the same input.
RENDER_VERSION = "1"
# Longer descriptions are shown as plain text: docutils takes seconds on megabytes.
MAX_CHARS = 512 * 1024
CACHE_ENTRIES = 256
KEY_PREFIX = "webui:readme:"
RST = "text/x-rst"
MARKDOWN = "text/markdown"
PLAIN = "text/plain"
MARKDOWN_VARIANTS = ("GFM", "CommonMark")


@dataclass(frozen=True)
class Rendered:
    """Sanitised HTML of a description; ``note`` says why it is plain text, if it is."""

    html: str
    note: str = ""

    def as_record(self) -> dict[str, str]:
        """What the metadata store keeps."""
        return {"html": self.html, "note": self.note}

    @classmethod
    def from_record(cls, value: Any) -> Rendered | None:
        """The stored rendering, or None for anything else."""
        if isinstance(value, dict) and isinstance(value.get("html"), str):
            return cls(value["html"], str(value.get("note") or ""))
        return None


def parse_content_type(value: str | None) -> tuple[str, str]:
    """``(type, markdown variant)`` of a Description-Content-Type; missing means reST."""
    if not value or not value.strip():
        return RST, ""
    message = Message()
    message["content-type"] = value
    ctype = message.get_content_type()
    variant = str(message.get_param("variant") or "")
    return ctype, variant


def _without_images(html: str) -> str:
    """``html`` with every image's source, size and class dropped (its alt text stays)."""

    def keep(tag: str, attr: str, value: str) -> str | None:
        if tag == "img" and attr in ("src", "width", "height", "class", "align"):
            return None
        return value

    return nh3.clean(html, tags=rr_clean.ALLOWED_TAGS, attributes=rr_clean.ALLOWED_ATTRIBUTES,
                     attribute_filter=keep, link_rel="nofollow",
                     url_schemes={"http", "https", "mailto"},
                     set_tag_attribute_values={"input": {"disabled": ""}})


def _plain(text: str, note: str) -> Rendered:
    return Rendered(rr_txt.render(text) or "", note)


def render(text: str, content_type: str | None) -> Rendered:
    """Render ``text`` of Description-Content-Type ``content_type``; never raises."""
    if len(text) > MAX_CHARS:
        return _plain(text, f"The description is too long to render ({len(text)} characters).")
    ctype, variant = parse_content_type(content_type)
    try:
        if ctype == PLAIN:
            return _plain(text, "")
        if ctype == MARKDOWN:
            if variant and variant not in MARKDOWN_VARIANTS:
                return _plain(text, f"Unknown Markdown variant {variant!r}: shown as plain text.")
            html = rr_markdown.render(text, variant=variant or "GFM")
        elif ctype == RST:
            html = rr_rst.render(text)
        else:
            return _plain(text, f"Unsupported description type {ctype!r}: shown as plain text.")
    except Exception:  # a renderer's bug must not break the page: show the text
        log.exception("rendering a %s description failed", ctype)
        html = None
    if html is None:
        return _plain(text, "The description could not be rendered: shown as plain text.")
    return Rendered(_without_images(html))


def cache_key(text: str, content_type: str | None) -> str:
    """The digest of what a rendering depends on."""
    digest = hashlib.sha256()
    for part in (RENDER_VERSION, content_type or "", text):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


class Readmes:
    """Renderings by cache key: in memory (least recently used dropped), then the store."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self.entries = entries
        self._lock = threading.Lock()
        self._found: OrderedDict[str, Rendered] = OrderedDict()
        self.rendered = 0  # renderings made by this process (tests and /+status read it)

    def _remember(self, key: str, value: Rendered) -> None:
        with self._lock:
            self._found[key] = value
            self._found.move_to_end(key)
            while len(self._found) > self.entries:
                self._found.popitem(last=False)

    def _recall(self, key: str) -> Rendered | None:
        with self._lock:
            found = self._found.get(key)
            if found is not None:
                self._found.move_to_end(key)
            return found

    def get(self, found_in: ServiceRegistry, text: str, content_type: str | None) -> Rendered:
        """The rendering of ``text``: remembered, stored, or made now and stored."""
        key = cache_key(text, content_type)
        found = self._recall(key)
        if found is not None:
            return found
        store = services.metadata_store(found_in)
        with store.read() as tx:
            found = Rendered.from_record(tx.get(KEY_PREFIX + key))
        if found is None:
            found = render(text, content_type)
            self.rendered += 1
            with store.write() as wtx:
                wtx.set(KEY_PREFIX + key, found.as_record())
        self._remember(key, found)
        return found


def register(registry: Registry) -> None:
    """One cache per server."""
    services.register(registry, Readmes, Readmes())


def description_of(verdata: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """``(text, content type)`` of a version's description, or None when it has none."""
    text = verdata.get("description")
    if not isinstance(text, str) or not text.strip():
        return None
    ctype = verdata.get("description_content_type")
    return text, ctype if isinstance(ctype, str) else None


def rendered_description(
    source: Registry | ServiceRegistry, verdata: Mapping[str, Any]
) -> Rendered | None:
    """The rendered description of a version, or None when it has none."""
    found = description_of(verdata)
    if found is None:
        return None
    server = services.ServiceRegistry.of(source)
    return server.get(Readmes).get(server, *found)


def render_uploaded(server: ServiceRegistry, event: UploadEvent) -> None:
    """Render (and store) the description of a release file's version, at upload."""
    if event.rel != "releasefile":
        return
    indexes = services.indexes(server)
    record = indexes.get(event.index)
    verdata = None if record is None else indexes.type_of(record).version(
        event.project, event.version)
    if verdata is not None:
        rendered_description(server, verdata)
