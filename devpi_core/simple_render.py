"""Rendering simple pages: PEP 503 HTML and PEP 691 JSON (PEP 700 fields; project pages also
carry the PEP 792 project status, api-version 1.4).

Links are relative to the page (``prefix`` climbs back to the server root) unless the server is
configured for absolute URLs, so the same page works behind any proxy path.

File links on simple pages use the ``_f``/``_e`` aliases of devpi's ``+f``/``+e`` file URLs,
and files of the page's own index are linked from the index (``../../_f/...``) rather than
from the server root. Installers clean every link they read; a ``+`` in it sends Python's URL
quoting down a slow path and every ``..`` is one more step of URL joining, which made pip spend
twice as long on our pages as on the upstream's. The JSON API keeps devpi's ``+f`` URLs.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

import msgspec

from devpi_core.model.names import version_sort_key
from devpi_core.records import hash_spec

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from devpi_core.records import Link, ProjectStatus

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "text/html"
API_VERSION = "1.1"
# project pages carry PEP 792's ``project-status`` (api-version 1.4); the list stays at 1.1
PROJECT_API_VERSION = "1.4"


_ENCODER = msgspec.json.Encoder(enc_hook=dict)

# devpi's file path segments and the aliases simple pages use (routes in core views)
_ALIASES = {"+f/": "_f/", "+e/": "_e/"}


def installer_path(relpath: str) -> str:
    """``user/index/+f/...`` as simple pages link it: ``user/index/_f/...``."""
    user, _sep, rest = relpath.partition("/")
    index, _sep, rest = rest.partition("/")
    alias = _ALIASES.get(rest[:3])
    return f"{user}/{index}/{alias}{rest[3:]}" if alias else relpath


class _Hrefs:
    """How a page's links are written: files of the page's own index from the index
    (``../../_f/...``: a relative ``prefix`` climbing to the root from a page two levels below
    its index reaches the index two steps earlier), everything else from the root."""

    def __init__(self, prefix: str, index: str) -> None:
        own = index + "/"
        self.root = prefix
        climbs = prefix.startswith("../") and prefix.count("../") >= 2
        own_prefix = prefix[6:] if climbs else prefix + own
        self.own_files = own + "+f/"
        self.own_files_href = own_prefix + _ALIASES["+f/"]
        self.own = own
        self.own_prefix = own_prefix

    def __call__(self, relpath: str) -> str:
        if relpath.startswith(self.own_files):  # the common case, with the fewest steps
            return self.own_files_href + relpath[len(self.own_files) :]
        path = installer_path(relpath)
        if path.startswith(self.own):
            return self.own_prefix + path[len(self.own) :]
        return self.root + path


def status_meta(status: ProjectStatus | None) -> str:
    """PEP 792's ``pypi:project-status`` (and ``-reason``) meta tags for an HTML page."""
    if status is None:
        return '<meta name="pypi:project-status" content="active">'
    out = f'<meta name="pypi:project-status" content="{escape(status.status)}">'
    if status.reason:
        out += f'<meta name="pypi:project-status-reason" content="{escape(status.reason)}">'
    return out


def status_json(status: ProjectStatus | None) -> dict[str, str]:
    """PEP 792's ``project-status`` object for a JSON page."""
    if status is None:
        return {"status": "active"}
    if status.reason:
        return {"status": status.status, "reason": status.reason}
    return {"status": status.status}


def project_html(
    title: str,
    links: Sequence[Link],
    prefix: str,
    index: str,
    status: ProjectStatus | None = None,
) -> bytes:
    """The PEP 503 page of one project on ``index``, with PEP 592/658/714 attributes and the
    PEP 792 status meta tags."""
    href_of = _Hrefs(prefix, index)
    out = [
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta name="pypi:repository-version" '
        f'content="{PROJECT_API_VERSION}">{status_meta(status)}<title>{escape(title)}</title>'
        f"</head>\n<body><h1>{escape(title)}</h1>\n"
    ]
    own_stage = escape(index)
    for link in links:
        href = escape(href_of(link.relpath))
        spec = link.hash_spec
        attrs = [f'href="{href}#{spec}"' if spec else f'href="{href}"']
        if link.requires_python:
            attrs.append(f'data-requires-python="{escape(link.requires_python)}"')
        if link.yanked is not False:
            reason = "" if link.yanked is True else str(link.yanked)
            attrs.append(f'data-yanked="{escape(reason)}"')
        if link.core_metadata:
            spec = hash_spec(link.core_metadata)
            attrs.append(f'data-core-metadata="{spec}" data-dist-info-metadata="{spec}"')
        stage = own_stage if link.relpath.startswith(href_of.own) else escape(link.stage)
        out.append(f"{stage} <a {' '.join(attrs)}>{escape(link.filename)}</a><br>\n")
    out.append("</body>\n</html>\n")
    return "".join(out).encode("utf-8")


class _JsonFile(msgspec.Struct, omit_defaults=True, gc=False):
    """One file of a PEP 691 page; fields at their default are left out."""

    filename: str
    url: str
    hashes: Any
    requires_python: str | None = msgspec.field(name="requires-python", default=None)
    yanked: bool | str = False
    core_metadata: Any = msgspec.field(name="core-metadata", default=None)
    dist_info_metadata: Any = msgspec.field(name="dist-info-metadata", default=None)
    size: int | None = None
    upload_time: str | None = msgspec.field(name="upload-time", default=None)


def project_json(
    name: str,
    links: Sequence[Link],
    prefix: str,
    index: str,
    status: ProjectStatus | None = None,
) -> bytes:
    """The PEP 691 page of one project on ``index`` (api-version 1.4: PEP 700's ``versions``,
    ``size``, ``upload-time`` and PEP 792's ``project-status``).

    Built column by column: the file entries are structs made and encoded at C level, so a
    page of thousands of files costs a few list comprehensions in Python.
    """
    href_of = _Hrefs(prefix, index)
    files: list[_JsonFile] = []
    versions: set[str] = set()
    if links:
        filenames, relpaths, hashes, requires, yanked, cores, sizes, times, vers = zip(
            *links, strict=True
        )
        hrefs = list(map(href_of, relpaths))
        # "" and {} are left out like None
        given = [[value or None for value in column] for column in (requires, cores, times)]
        files = list(
            map(
                _JsonFile,
                filenames,
                hrefs,
                hashes,
                given[0],
                yanked,
                given[1],
                given[1],
                sizes,
                given[2],
            )
        )
        versions.update(filter(None, vers))
    page = {
        "meta": {"api-version": PROJECT_API_VERSION},
        "name": name,
        "project-status": status_json(status),
        "versions": sorted(versions, key=version_sort_key),
        "files": files,
    }
    # compiled encoding, UTF-8 as is; hashes may be read-only mappings: the hook encodes them
    # as objects
    return _ENCODER.encode(page)


def list_html(title: str, names: Iterable[str]) -> Iterator[bytes]:
    """The PEP 503 project list, streamed in chunks."""
    yield (
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta name="pypi:repository-version" '
        f'content="{API_VERSION}"><title>{escape(title)}</title></head>\n'
        f"<body><h1>{escape(title)}</h1>\n"
    ).encode()
    for chunk in _chunks(names):
        yield "".join(f'<a href="{escape(n)}/">{escape(n)}</a><br>\n' for n in chunk).encode()
    yield b"</body>\n</html>\n"


def list_json(names: Iterable[str]) -> Iterator[bytes]:
    """The PEP 691 project list, streamed in chunks."""
    yield b'{"meta":{"api-version":"' + API_VERSION.encode() + b'"},"projects":['
    first = True
    for chunk in _chunks(names):
        body = _ENCODER.encode([{"name": n} for n in chunk])[1:-1]
        yield body if first else b"," + body
        first = False
    yield b"]}"


def _chunks(names: Iterable[str], size: int = 2000) -> Iterator[list[str]]:
    chunk: list[str] = []
    for name in names:
        chunk.append(name)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
