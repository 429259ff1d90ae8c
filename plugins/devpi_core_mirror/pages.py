"""Reading upstream simple pages: PEP 691 JSON, PEP 503 HTML and the project list.

Everything here is pure: bytes in, :class:`~devpi_core.records.UpstreamFile` values out. Links
that are not archives of the requested project, that are not ``http(s)``, or whose file name
could escape a path are dropped; credentials are stripped from every URL.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import msgspec

from devpi_core.model.names import ARCHIVE_SUFFIXES, normalize
from devpi_core.records import UpstreamFile
from devpi_core_mirror.typed_page import is_plain_url, is_sha256, read_plain_page

HASH_LENGTHS = {
    "md5": 32,
    "sha1": 40,
    "sha224": 56,
    "sha256": 64,
    "sha384": 96,
    "sha512": 128,
    "blake2b": 128,
    "blake2s": 64,
}
_HEX = re.compile(r"[0-9a-fA-F]+")
_DECODER = msgspec.json.Decoder()
_BAD_FILENAME = re.compile(r"[/\\\x00-\x1f\x7f]")


class MalformedPage(ValueError):
    """The upstream answered something that is not a simple page."""


# -- file names -----------------------------------------------------------------------------
# longest first, so ".tar.bz2" is taken before ".bz2"
_SUFFIXES = tuple(sorted(ARCHIVE_SUFFIXES, key=len, reverse=True))
_V_DIGITS = {f"v{d}" for d in "0123456789"}


def strip_suffix(filename: str) -> str | None:
    """``filename`` without its archive suffix, or None if it is not an archive."""
    lower = filename.lower()
    if lower.endswith(_SUFFIXES):  # one C-level test for the usual answer
        for suffix in _SUFFIXES:
            if lower.endswith(suffix):
                return filename[: -len(suffix)]
    return None


def is_archive_of(filename: str, project: str) -> bool:
    """Whether ``filename`` is a safe archive name belonging to the normalized ``project``."""
    if (
        not filename
        or len(filename) > 255
        or filename.startswith(".")
        or _BAD_FILENAME.search(filename)
        or not filename.lower().endswith(_SUFFIXES)
    ):
        return False
    if filename.endswith(".whl"):
        return normalize(filename.split("-", 1)[0]) == project
    version = version_of(filename, project)
    # "foo-bar-baz-1.0.tar.gz" is not a file of "foo-bar": versions start with a digit
    return version is not None and (version[:1].isdigit() or version[:2].lower() in _V_DIGITS)


def version_of(filename: str, project: str) -> str | None:
    """The version a distribution file name carries, or None if it cannot be told."""
    if filename.endswith(".whl"):  # name-version-tags: most files of big pages
        parts = filename.split("-", 2)
        if len(parts) > 2:
            return parts[1]
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


def versions_of(filenames: Iterable[str], project: str) -> list[str | None]:
    """:func:`version_of` of each file name, a wheel's with one split (most files of a big
    page are wheels)."""
    return [
        parts[1]
        if filename.endswith(".whl") and len(parts := filename.split("-", 2)) > 2
        else version_of(filename, project)
        for filename in filenames
    ]


def _is_plain(url: str) -> bool:
    # the common case, decided with string methods only: http(s), a host, no userinfo,
    # no fragment, nothing unprintable
    _scheme, sep, rest = url.partition("://")
    netloc, slash, _path = rest.partition("/")
    return (
        bool(sep and slash and netloc)
        and "@" not in netloc
        and "#" not in rest
        and " " not in rest
        and rest.isprintable()
    )


def clean_url(url: str) -> str | None:
    """``url`` without credentials and fragment if it is an absolute http(s) URL, else None."""
    if url.startswith(("https://", "http://")) and _is_plain(url):
        return url
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


# a file name that is safe as one path segment (plain URLs and digests: typed_page)
_SAFE_NAME = re.compile(r"[^./\\\x00-\x1f\x7f][^/\\\x00-\x1f\x7f]{0,254}")


def _hashes(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not value:
        return {}
    if len(value) == 1:  # the usual {"sha256": "<64 lowercase hex>"}
        digest = value.get("sha256")
        if isinstance(digest, str) and is_sha256(digest):
            return {"sha256": digest}
    result = {}
    for given, digest in value.items():
        name = str(given).lower().replace("-", "_")
        # devpi-server keeps any value of a known algorithm (``#sha256=1234`` names the file
        # ``+f/123/4/...``; fetching it then fails its check): hex, at most a full digest long
        if (
            isinstance(digest, str)
            and 0 < len(digest) <= HASH_LENGTHS.get(name, 0)
            and _HEX.fullmatch(digest)
        ):
            result[name] = digest.lower()
    return result


class _Belongs:
    """``is_archive_of`` for one page, remembering the answer per wheel name prefix (a page
    has thousands of wheels and a handful of prefixes)."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.prefixes: dict[str, bool] = {}

    def __call__(self, filename: str) -> bool:
        if filename.endswith(".whl") and _SAFE_NAME.fullmatch(filename) is not None:
            prefix = filename.split("-", 1)[0]
            known = self.prefixes.get(prefix)
            if known is None:
                known = self.prefixes[prefix] = normalize(prefix) == self.project
            return known
        return is_archive_of(filename, self.project)

    def each(self, filenames: Sequence[str]) -> list[bool]:
        """The answer for every name; when all are safe path segments (checked once, on the
        names joined by a slash, which none may hold), a wheel's is its prefix's."""
        joined = "/".join(filenames)
        if (
            not filenames
            or joined.count("/") != len(filenames) - 1
            or "\\" in joined
            or not joined.isprintable()
            or joined.startswith((".", "/"))
            or joined.endswith("/")
            or "/." in joined
            or "//" in joined
            or max(map(len, filenames)) > 255
        ):
            return list(map(self, filenames))
        prefixes = self.prefixes
        return [
            known
            if filename.endswith(".whl")
            and (known := prefixes.get(filename.partition("-")[0])) is not None
            else self(filename)
            for filename in filenames
        ]


def _make_file(belongs: _Belongs, filename: str, url: str, **fields: Any) -> UpstreamFile | None:
    cleaned = clean_url(url)
    if cleaned is None or not belongs(filename):
        return None
    return UpstreamFile(filename=filename, url=cleaned, **fields)


def _add(chosen: dict[str, UpstreamFile], f: UpstreamFile) -> None:
    # devpi: per file name, a link with a hash beats one without; otherwise the first wins
    old = chosen.get(f.filename)
    if old is None or (not old.hashes and f.hashes):
        chosen[f.filename] = f


# -- PEP 691 JSON ---------------------------------------------------------------------------
def parse_json(body: bytes, base_url: str, project: str) -> tuple[UpstreamFile, ...]:
    """The files of a PEP 691 (api-version 1.x) project page."""
    belongs = _Belongs(project)
    join = RelativeLinks(base_url)
    plain = read_plain_page(body, belongs, join)
    if plain is not None:
        return plain
    try:
        data = _DECODER.decode(body)  # compiled: about half the stdlib's time on big pages
    except (msgspec.DecodeError, ValueError) as exc:
        raise MalformedPage(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise MalformedPage("JSON page without a 'files' list")
    meta = data.get("meta")
    version = str(meta.get("api-version", "")) if isinstance(meta, dict) else ""
    if not version.startswith("1."):
        raise MalformedPage(f"unsupported api-version {version!r}")
    chosen: dict[str, UpstreamFile] = {}
    for entry in data["files"]:
        if type(entry) is not dict:
            continue
        made = _plain_json_file(entry, belongs, join)
        if made is None:
            made = _json_file(entry, base_url, belongs)
        if made is not None:
            _add(chosen, made)
    return tuple(chosen.values())


def _plain_json_file(
    entry: dict[str, Any], belongs: _Belongs, join: RelativeLinks
) -> UpstreamFile | None:
    """The common entry (one sha256, a plain URL, absolute or a plain relative path,
    well-typed fields, no metadata hashes) checked with a few C-level calls; None sends anything
    else to :func:`_json_file`, which also drops what is not a file of the project."""
    filename, url, hashes = entry.get("filename"), entry.get("url"), entry.get("hashes")
    if type(url) is str and not url.startswith(("https://", "http://")):
        url = join(url)
    if (
        type(filename) is not str
        or type(url) is not str
        or type(hashes) is not dict
        or len(hashes) != 1
        or not is_plain_url(url)
    ):
        return None
    sha256 = hashes.get("sha256")
    requires_python = entry.get("requires-python")
    yanked = entry.get("yanked", False)
    size = entry.get("size")
    upload_time = entry.get("upload-time")
    if (
        type(sha256) is not str
        or is_sha256(sha256) is None
        or (requires_python is not None and type(requires_python) is not str)
        or (yanked is not False and yanked is not True and type(yanked) is not str)
        or (size is not None and (type(size) is not int or size < 0))
        or (upload_time is not None and type(upload_time) is not str)
        or "core-metadata" in entry
        or "dist-info-metadata" in entry
        or not belongs(filename)
    ):
        return None
    return UpstreamFile(
        filename, url, hashes, requires_python or None, yanked, None, size, upload_time
    )


class RelativeLinks:
    """``urljoin(base_url, link)`` for the links of one page, in a few string operations for
    the usual relative link (``../../files/<dir>/<name>``: leading ``../`` or ``./``, then
    plain segments); None for anything else, which then goes through ``urljoin``.

    Upstreams that are themselves mirrors (devpi, proxies) link relatively; ``urljoin`` was
    three quarters of the time to read their big pages.
    """

    _SPECIAL = re.compile(r"[?#;:\\\x00-\x20\x7f-\U0010ffff]|//|(?:^|/)\.\.?(?:/|$)")

    def __init__(self, base_url: str) -> None:
        self.origin = ""
        self.dirs: list[str] | None = None
        scheme, sep, rest = base_url.partition("://")
        netloc, slash, path = rest.partition("/")
        if (
            scheme in ("http", "https")
            and sep
            and slash
            and netloc
            and self._SPECIAL.search(path) is None
            and self._SPECIAL.search(netloc.replace(":", "")) is None
        ):
            self.origin = f"{scheme}://{netloc}/"
            self.dirs = path.split("/")[:-1]

    def __call__(self, link: str) -> str | None:
        dirs = self.dirs
        if dirs is None:
            return None
        up = 0
        while True:
            if link.startswith("../"):
                up += 1
                link = link[3:]
            elif link.startswith("./"):
                link = link[2:]
            else:
                break
        if not link or link[0] == "/" or up > len(dirs) or self._SPECIAL.search(link):
            return None
        kept = dirs[: len(dirs) - up]
        return self.origin + "/".join([*kept, link])


def _json_file(entry: dict[str, Any], base_url: str, belongs: _Belongs) -> UpstreamFile | None:
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
        belongs,
        filename,
        url,
        hashes=_hashes(entry.get("hashes")),
        requires_python=requires_python
        if isinstance(requires_python, str) and requires_python
        else None,
        yanked=yanked if isinstance(yanked, (bool, str)) else bool(yanked),
        core_metadata=_hashes(core) or None,
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        upload_time=upload_time if isinstance(upload_time, str) else None,
    )


# -- PEP 503 HTML ---------------------------------------------------------------------------
_TAG = re.compile(r"<(a|base)\s([^>]*)>", re.IGNORECASE)
_MARKUP = re.compile(r"<[!/?a-zA-Z]")
_ATTR = re.compile(r"""([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?""")


def _attributes(text: str) -> dict[str, str | None]:
    attrs: dict[str, str | None] = {}
    for match in _ATTR.finditer(text):
        name, double, single, bare = match.groups()
        value = double if double is not None else single if single is not None else bare
        attrs.setdefault(name.lower(), html.unescape(value) if value and "&" in value else value)
    return attrs


def _anchors(text: str) -> tuple[str | None, list[dict[str, str | None]]]:
    """``<base href>`` and the attributes of every ``<a>``: a regular-expression scan, many
    times faster than ``html.parser`` on pages with thousands of links."""
    base = None
    anchors = []
    for match in _TAG.finditer(text):
        attrs = _attributes(match.group(2))
        if match.group(1).lower() == "a":
            anchors.append(attrs)
        elif base is None:
            base = attrs.get("href")
    return base, anchors


def parse_html(body: bytes, base_url: str, project: str) -> tuple[UpstreamFile, ...]:
    """The files of a PEP 503 project page (honours ``<base href>``)."""
    text = body.decode("utf-8", errors="replace")
    if not text.strip():
        return ()  # devpi-server: an empty page is a project without releases
    if _MARKUP.search(text) is None:
        # an error text answered with 200 must not replace a cached page by an empty one; any
        # markup (a page without anchors too) is a page, as devpi-server reads it
        raise MalformedPage("the answer is not an HTML page")
    base_href, anchors = _anchors(text)
    base = urljoin(base_url, base_href) if base_href else base_url
    chosen: dict[str, UpstreamFile] = {}
    belongs = _Belongs(project)
    for attrs in anchors:
        href = attrs.get("href")
        if not href:
            continue
        url = href if href.startswith(("https://", "http://")) else urljoin(base, href)
        url, _sep, fragment = url.partition("#")
        path = url.partition("?")[0]
        filename = path.rsplit("/", 1)[-1]
        if "%" in filename:
            filename = unquote(filename)
        hashes = {}
        name, sep, digest = fragment.partition("=")
        if sep:
            hashes = _hashes({name: digest})
        made = _make_file(belongs, filename, url, hashes=hashes, **_html_fields(attrs))
        if made is not None:
            _add(chosen, made)
    return tuple(chosen.values())


def _html_fields(attrs: Mapping[str, str | None]) -> dict[str, Any]:
    yanked: bool | str = False
    if "data-yanked" in attrs:
        yanked = attrs["data-yanked"] or True
    core = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
    core_hashes = None
    if core and "=" in core:
        name, _sep, digest = core.partition("=")
        core_hashes = _hashes({name: digest}) or None
    return {
        "requires_python": attrs.get("data-requires-python") or None,
        "yanked": yanked,
        "core_metadata": core_hashes,
    }


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
