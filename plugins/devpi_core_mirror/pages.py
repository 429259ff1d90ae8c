"""Reading upstream simple pages: PEP 691 JSON, PEP 503 HTML and the project list.

Everything here is pure: bytes in, :class:`~devpi_core.records.UpstreamFile` values out. Links
that are not archives of the requested project, that are not ``http(s)``, or whose file name
could escape a path are dropped; credentials are stripped from every URL.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from devpi_core.model.names import ARCHIVE_SUFFIXES, normalize
from devpi_core.records import UpstreamFile

HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128,
                "blake2b": 128, "blake2s": 64}
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_BAD_FILENAME = re.compile(r"[/\\\x00-\x1f\x7f]")


class MalformedPage(ValueError):
    """The upstream answered something that is not a simple page."""


# -- file names -----------------------------------------------------------------------------
def strip_suffix(filename: str) -> str | None:
    """``filename`` without its archive suffix, or None if it is not an archive."""
    lower = filename.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if lower.endswith(suffix):
            return filename[: -len(suffix)]
    return None


def is_archive_of(filename: str, project: str) -> bool:
    """Whether ``filename`` is a safe archive name belonging to the normalized ``project``."""
    if (not filename or len(filename) > 255 or filename.startswith(".")
            or _BAD_FILENAME.search(filename) or strip_suffix(filename) is None):
        return False
    if filename.endswith(".whl"):
        return normalize(filename.split("-", 1)[0]) == project
    version = version_of(filename, project)
    # "foo-bar-baz-1.0.tar.gz" is not a file of "foo-bar": versions start with a digit
    return version is not None and (version[:1].isdigit() or version[:2].lower() in _V_DIGITS)


_V_DIGITS = {f"v{d}" for d in "0123456789"}


def version_of(filename: str, project: str) -> str | None:
    """The version a distribution file name carries, or None if it cannot be told."""
    base = strip_suffix(filename)
    if base is None:
        return None
    parts = base.split("-")
    if filename.endswith((".whl", ".egg")):
        return parts[1] if len(parts) > 1 else None
    for i in range(len(parts) - 1, 0, -1):
        if normalize("-".join(parts[:i])) == project:
            return "-".join(parts[i:]) or None
    return None


_PLAIN_URL = re.compile(r"^https?://[A-Za-z0-9.:\[\]-]+/[^\s#@]*$")


def clean_url(url: str) -> str | None:
    """``url`` without credentials and fragment if it is an absolute http(s) URL, else None."""
    if _PLAIN_URL.match(url):
        return url  # the common case, decided without parsing
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not hostname:
        return None
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def _hashes(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    result = {}
    for name, digest in value.items():
        name = str(name).lower().replace("-", "_")
        if (isinstance(digest, str) and HASH_LENGTHS.get(name) == len(digest)
                and _HEX.match(digest)):
            result[name] = digest.lower()
    return result


def _make_file(project: str, filename: str, url: str, **fields: Any) -> UpstreamFile | None:
    cleaned = clean_url(url)
    if cleaned is None or not is_archive_of(filename, project):
        return None
    return UpstreamFile(filename=filename, url=cleaned, **fields)


def _dedupe(files: Iterable[UpstreamFile]) -> tuple[UpstreamFile, ...]:
    # devpi: per file name, a link with a hash beats one without; otherwise the first wins
    chosen: dict[str, UpstreamFile] = {}
    for f in files:
        old = chosen.get(f.filename)
        if old is None or (not old.hashes and f.hashes):
            chosen[f.filename] = f
    return tuple(chosen.values())


# -- PEP 691 JSON ---------------------------------------------------------------------------
def parse_json(body: bytes, base_url: str, project: str) -> tuple[UpstreamFile, ...]:
    """The files of a PEP 691 (api-version 1.x) project page."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedPage(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise MalformedPage("JSON page without a 'files' list")
    meta = data.get("meta")
    version = str(meta.get("api-version", "")) if isinstance(meta, dict) else ""
    if not version.startswith("1."):
        raise MalformedPage(f"unsupported api-version {version!r}")
    files = []
    for entry in data["files"]:
        if not isinstance(entry, dict):
            continue
        made = _json_file(entry, base_url, project)
        if made is not None:
            files.append(made)
    return _dedupe(files)


def _json_file(entry: dict[str, Any], base_url: str, project: str) -> UpstreamFile | None:
    filename, url = entry.get("filename"), entry.get("url")
    if not isinstance(filename, str) or not isinstance(url, str):
        return None
    yanked = entry.get("yanked", False)
    core = entry.get("core-metadata", entry.get("dist-info-metadata"))
    requires_python = entry.get("requires-python")
    size = entry.get("size")
    upload_time = entry.get("upload-time")
    if not url.startswith(("https://", "http://")):
        url = urljoin(base_url, url)
    return _make_file(
        project, filename, url,
        hashes=_hashes(entry.get("hashes")),
        requires_python=requires_python if isinstance(requires_python, str) and requires_python else None,
        yanked=yanked if isinstance(yanked, (bool, str)) else bool(yanked),
        core_metadata=_hashes(core) or None,
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        upload_time=upload_time if isinstance(upload_time, str) else None,
    )


# -- PEP 503 HTML ---------------------------------------------------------------------------
class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.anchors.append(dict(attrs))
        elif tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")


def parse_html(body: bytes, base_url: str, project: str) -> tuple[UpstreamFile, ...]:
    """The files of a PEP 503 project page (honours ``<base href>``)."""
    parser = _Anchors()
    try:
        parser.feed(body.decode("utf-8", errors="replace"))
        parser.close()
    except AssertionError as exc:  # html.parser's way of giving up on broken markup
        raise MalformedPage(f"unreadable HTML: {exc}") from None
    base = urljoin(base_url, parser.base) if parser.base else base_url
    files = []
    for attrs in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        url = urljoin(base, href)
        parts = urlsplit(url)
        filename = unquote(parts.path.rsplit("/", 1)[-1])
        hashes = {}
        name, sep, digest = parts.fragment.partition("=")
        if sep:
            hashes = _hashes({name: digest})
        made = _make_file(project, filename, url, hashes=hashes, **_html_fields(attrs))
        if made is not None:
            files.append(made)
    return _dedupe(files)


def _html_fields(attrs: Mapping[str, str | None]) -> dict[str, Any]:
    yanked: bool | str = False
    if "data-yanked" in attrs:
        yanked = attrs["data-yanked"] or True
    core = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
    core_hashes = None
    if core and "=" in core:
        name, _sep, digest = core.partition("=")
        core_hashes = _hashes({name: digest}) or None
    return {"requires_python": attrs.get("data-requires-python") or None, "yanked": yanked,
            "core_metadata": core_hashes}


# -- the project list -----------------------------------------------------------------------
_JSON_NAME = re.compile(rb'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')
_HTML_ANCHOR = re.compile(rb"<a\b[^>]*>([^<]*)</a\s*>", re.IGNORECASE)
_MAX_TAIL = 64 * 1024


def scan_names(chunks: Iterable[bytes], *, is_json: bool) -> Iterator[str]:
    """Normalized project names from a streamed project list (PEP 691 JSON or HTML).

    Works on chunks of any size without holding the whole list: only the unmatched tail of
    the previous chunk is kept.
    """
    pattern = _JSON_NAME if is_json else _HTML_ANCHOR
    tail = b""
    for chunk in chunks:
        buffer = tail + chunk
        end = 0
        for match in pattern.finditer(buffer):
            name = _decode_name(match.group(1), is_json=is_json)
            if name:
                yield name
            end = match.end()
        tail = buffer[end:][-_MAX_TAIL:]


def _decode_name(raw: bytes, *, is_json: bool) -> str | None:
    try:
        text = json.loads(b'"' + raw + b'"') if is_json else html.unescape(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    name = normalize(text.strip())
    return name if name and name != "-" and len(name) <= 200 else None
