"""Building HTML safely: every value is escaped unless it is already :class:`Markup`.

Pages are built from these small functions instead of a template engine: the output is a
handful of tables and lists, and escaping by construction (text in, ``Markup`` out) leaves no
place where a value from a package's metadata could slip into the page unescaped.
"""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from collections.abc import Iterable


class Markup(str):
    """HTML that is safe to emit as it is."""

    __slots__ = ()


def esc(value: object) -> Markup:
    """``value`` as HTML text: escaped, unless it already is markup."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[object], sep: str = "") -> Markup:
    """Escape each part and join them with the (literal) separator ``sep``."""
    return Markup(sep.join(esc(part) for part in parts))


def _attrs(attrs: dict[str, object]) -> str:
    out = []
    for name, value in attrs.items():
        if value is None or value is False:
            continue
        key = name.rstrip("_").replace("_", "-")
        out.append(f" {key}" if value is True else f' {key}="{esc(value)}"')
    return "".join(out)


def el(tag: str, /, *children: object, **attrs: object) -> Markup:
    """``<tag attrs>children</tag>``; ``class_`` is ``class``, ``data_x`` is ``data-x``."""
    return Markup(f"<{tag}{_attrs(attrs)}>{join(children)}</{tag}>")


def void(tag: str, /, **attrs: object) -> Markup:
    """An element without content (``<input>``, ``<meta>``, ``<link>``)."""
    return Markup(f"<{tag}{_attrs(attrs)}>")


def link(href: str, text: object, **attrs: object) -> Markup:
    """``<a href=...>text</a>``."""
    return el("a", text, href=href, **attrs)


def path(*segments: str) -> str:
    """A URL path from raw segments, each percent-quoted (``/`` inside a segment too)."""
    return "/" + "/".join(quote(segment, safe="+@~!$&'()*,;=:") for segment in segments)


def table(headers: Iterable[object], rows: Iterable[Iterable[object]], **attrs: object) -> Markup:
    """A table with a header row; each row is a sequence of cells (text or markup)."""
    head = el("thead", el("tr", *(el("th", h, scope="col") for h in headers)))
    body = el("tbody", *(el("tr", *(el("td", cell) for cell in row)) for row in rows))
    return el("table", head, body, **attrs)


def deflist(items: Iterable[tuple[object, object]], **attrs: object) -> Markup:
    """A ``<dl>`` of (term, description) pairs."""
    return el("dl", *(join((el("dt", term), el("dd", value))) for term, value in items), **attrs)


def human_size(size: int | None) -> str:
    """``1234567`` -> ``1.2 MB``; "" for unknown."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return ""  # pragma: no cover - the loop always returns


def iso_time(value: str | None) -> Markup:
    """A PEP 700 upload time (ISO 8601) shown to the minute, the full value in a tooltip."""
    if not value:
        return Markup("")
    shown = value.replace("T", " ")[:16]
    return el("time", shown, datetime=value, title=value)


def log_time(when: object) -> Markup:
    """devpi's log time (six ints, UTC) or seconds since the epoch, shown to the second."""
    parts = when[:6] if isinstance(when, (list, tuple)) else ()
    if len(parts) == 6 and all(isinstance(v, int) for v in parts):
        y, mo, d, h, mi, s = parts
        text = f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}"
    elif isinstance(when, (int, float)) and not isinstance(when, bool):
        text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(when))
    else:
        return esc(when)
    return el("time", text + " UTC", datetime=text.replace(" ", "T") + "Z")


def short_hash(sha256: str | None) -> Markup:
    """The first 12 hex digits of a digest, the whole digest in a tooltip."""
    if not sha256:
        return Markup("")
    return el("code", sha256[:12] + "…", title=f"sha256 {sha256}", class_="hash")
