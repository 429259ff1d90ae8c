"""A fake upstream package index for tests: PEP 503 HTML and PEP 691 JSON, files, faults.

:class:`FakeUpstream` is a small WSGI app served by waitress on 127.0.0.1 (port 0) in a thread of
the test process. It serves generated wheels and sdists with hashes, ``requires-python``, yanked
flags, PEP 658 metadata, PEP 700 ``size``/``upload-time``, an ``X-PyPI-Last-Serial`` header and
ETags, records every request it gets, and can be told to misbehave (:class:`Faults`), so mirror
tests can assert "exactly one upstream request" or "nothing went upstream"::

    with FakeUpstream() as upstream:
        upstream.add("hello", make_wheel(DistSpec("hello", "1.0")))
        client.create_index("root/fake", type="mirror", mirror_url=upstream.url)
        upstream.faults.status = 500
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import waitress.server
from webob import Request, Response

from devpi_core.model.names import normalize
from devpi_core.testing.waitress_loop import serve_until
from devpi_core.web import best_offer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from devpi_core.testing.dists import Dist

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
_PAGE = re.compile(r"^/simple/([^/]+)/?$")
_FILE = re.compile(r"^/files/([0-9a-f]{8})/([^/]+)$")


@dataclass
class Faults:
    """Switchable misbehaviour; ``only`` limits faults to paths containing that string.

    ``status`` answers every request with that HTTP status; ``delay`` sleeps that many seconds
    before answering; ``truncate`` sends files shorter than their Content-Length; ``wrong_hash``
    serves different bytes than the page advertises (same length); ``wrong_length`` announces
    (and sends) 100 bytes fewer than the file has; ``slow_body`` pauses that long between the
    64 KiB chunks of a file; ``serial_backwards`` reports
    a serial lower than every one sent before; ``malformed`` (``"json"`` or ``"html"``) serves
    garbage pages in that format; ``hold`` blocks answers until the event is set.
    """

    status: int | None = None
    delay: float = 0.0
    truncate: bool = False
    wrong_hash: bool = False
    wrong_length: bool = False
    slow_body: float = 0.0
    serial_backwards: bool = False
    malformed: str | None = None
    hold: threading.Event | None = None
    only: str = ""

    def applies(self, path: str) -> bool:
        """Whether the faults concern a request for ``path``."""
        return self.only in path


@dataclass
class FakeFile:
    """A file the fake upstream serves, and how its page describes it."""

    project: str
    dist: Dist
    requires_python: str | None = None
    yanked: bool | str = False
    metadata: bool | None = None
    upload_time: str = "2024-01-01T00:00:00.000000Z"
    hashed: bool = True

    @property
    def key(self) -> str:
        """A short directory name in the file URL."""
        return self.dist.sha256[:8]


@dataclass(frozen=True)
class Seen:
    """One request the fake upstream received."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class _State:
    files: dict[str, list[FakeFile]] = field(default_factory=dict)
    extra_links: dict[str, list[str]] = field(default_factory=dict)
    pages: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    serials: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    serial: int = 0


class FakeUpstream:
    """A simple index on 127.0.0.1; see the module docstring.

    ``files_host`` serves file links under another host name (``localhost``) of the same server,
    the way a real index keeps files on a separate host; ``auth`` (user, password) makes every
    request need HTTP Basic credentials; ``json`` False answers pages in HTML only.
    ``redirects`` maps a path to a URL it answers with ``302 Found`` (before asking for
    credentials).
    """

    def __init__(
        self,
        *,
        files_host: str | None = None,
        auth: tuple[str, str] | None = None,
        json_pages: bool = True,
    ) -> None:
        self.files_host = files_host
        self.auth = auth
        self.json_pages = json_pages
        self.faults = Faults()
        self.redirects: dict[str, str] = {}
        self.requests: list[Seen] = []
        self._state = _State()
        self._lock = threading.Lock()
        self._server: Any = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeUpstream:
        """Listen on 127.0.0.1 (the same port again after :meth:`stop`)."""
        self._server = waitress.server.create_server(
            self.wsgi,
            host="127.0.0.1",
            port=self.port,
            threads=8,
            clear_untrusted_proxy_headers=True,
        )
        self.port = int(self._server.effective_port)
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=serve_until,  # "down" means down: keep-alive connections close too
            args=(self._server, self._stopping),
            name="fake-upstream",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: connections are refused until :meth:`start` (upstream down)."""
        if self.faults.hold is not None:
            self.faults.hold.set()
        self._stopping.set()
        self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The simple index URL to use as ``mirror_url``."""
        return f"{self.root}/simple/"

    # -- content ---------------------------------------------------------------------------
    def add(self, project: str, dist: Dist, **options: Any) -> FakeFile:
        """Serve ``dist`` on the page of ``project``; options as in :class:`FakeFile`."""
        entry = FakeFile(normalize(project), dist, **options)
        if entry.metadata is None:  # like the public index: PEP 658 metadata for wheels only
            entry.metadata = dist.filename.endswith(".whl")
        with self._lock:
            self._state.files.setdefault(entry.project, []).append(entry)
            self._bump(entry.project)
        return entry

    def add_link(self, project: str, href: str) -> None:
        """Put a raw link on a project page (e.g. one pointing elsewhere)."""
        with self._lock:
            self._state.extra_links.setdefault(normalize(project), []).append(href)
            self._bump(normalize(project))

    def add_page(self, project: str, body: bytes, content_type: str = "text/html") -> None:
        """Answer the page of ``project`` with exactly ``body`` (200, any ``Accept``): an empty
        page, one without links, or anything an upstream may send."""
        with self._lock:
            self._state.pages[normalize(project)] = (body, content_type)
            self._bump(normalize(project))

    def remove(self, project: str) -> None:
        """Remove a project: its page answers 404 from now on."""
        with self._lock:
            self._state.files.pop(normalize(project), None)
            self._state.extra_links.pop(normalize(project), None)
            self._state.pages.pop(normalize(project), None)

    def set_status(self, project: str, status: str, reason: str | None = None) -> None:
        """Give ``project`` a PEP 792 status (``quarantined``, ``archived``, ...), shown in its
        JSON page as ``project-status`` and in its HTML page as ``pypi:project-status`` meta
        tags. A quarantined project's page lists no files, as the public index serves it."""
        with self._lock:
            self._state.statuses[normalize(project)] = (status, reason)
            self._bump(normalize(project))

    def remove_file(self, project: str, filename: str) -> None:
        """Take one file off the page of ``project`` (its URL answers 404 from now on)."""
        with self._lock:
            files = self._state.files.get(normalize(project), [])
            kept = [f for f in files if f.dist.filename != filename]
            assert len(kept) < len(files), f"{filename} is not on the page of {project}"
            self._state.files[normalize(project)] = kept
            self._bump(normalize(project))

    def touch(self, project: str) -> None:
        """Give ``project`` a new serial without changing its files."""
        with self._lock:
            self._bump(normalize(project))

    def _bump(self, project: str) -> None:
        self._state.serial += 1
        self._state.serials[project] = self._state.serial

    def file_url(self, entry: FakeFile) -> str:
        """The absolute URL of a file."""
        host = self.files_host or "127.0.0.1"
        return f"http://{host}:{self.port}/files/{entry.key}/{entry.dist.filename}"

    # -- what was asked --------------------------------------------------------------------
    def seen(self, contains: str = "") -> list[Seen]:
        """Requests whose path contains ``contains``."""
        with self._lock:
            return [r for r in self.requests if contains in r.path]

    def count(self, contains: str = "") -> int:
        """How many requests had ``contains`` in their path."""
        return len(self.seen(contains))

    def clear(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self.requests.clear()

    # -- the WSGI app ----------------------------------------------------------------------
    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Answer one request."""
        request = Request(environ)
        with self._lock:
            self.requests.append(Seen(request.method, request.path, dict(request.headers)))
        response = self._answer(request)
        return response(environ, start_response)  # type: ignore[no-any-return]

    def _answer(self, request: Request) -> Response:
        path = request.path
        early = self._fault_or_redirect(path)
        if early is not None:
            return early
        if self.auth is not None and not self._authorized(request):
            response = Response("authentication required", status=401)
            response.headers["WWW-Authenticate"] = 'Basic realm="fake"'
            return response
        if path in ("/simple", "/simple/"):
            return self._list(request)
        match = _PAGE.match(path)
        if match:
            return self._page(request, match.group(1))
        match = _FILE.match(path)
        if match:
            return self._file(request, match.group(1), match.group(2))
        return Response("not found", status=404)

    def _fault_or_redirect(self, path: str) -> Response | None:
        faults = self.faults
        if faults.applies(path):
            if faults.hold is not None:
                faults.hold.wait(30)
            if faults.delay:
                time.sleep(faults.delay)
            if faults.status is not None:
                return Response(f"fault {faults.status}", status=faults.status)
        if path in self.redirects:
            return Response(status=302, location=self.redirects[path])
        return None

    def _authorized(self, request: Request) -> bool:
        assert self.auth is not None
        expected = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        return bool(request.headers.get("Authorization", "") == f"Basic {expected}")

    def _wants_json(self, request: Request) -> bool:
        if not self.json_pages:
            return False
        return best_offer(request.environ.get("HTTP_ACCEPT"), (JSON_TYPE, "text/html")) == JSON_TYPE

    def _finish(self, request: Request, body: bytes, content_type: str, serial: int) -> Response:
        path = request.path
        if self.faults.applies(path) and self.faults.malformed:
            body = (
                b'{"meta": {"api-version": "1.1"}, "files": [{"filename": 3'
                if self.faults.malformed == "json"
                else b'<html><body><a href="x"><<<</'
            )
            content_type = JSON_TYPE if self.faults.malformed == "json" else "text/html"
        if self.faults.applies(path) and self.faults.serial_backwards:
            serial = 0
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        if etag in request.if_none_match:
            response = Response(status=304)
        else:
            response = Response(body, content_type=content_type, charset=None)
        response.headers["ETag"] = etag
        response.headers["X-PyPI-Last-Serial"] = str(serial)
        response.headers["Vary"] = "Accept"
        return response

    def _list(self, request: Request) -> Response:
        with self._lock:
            state = self._state
            names = sorted({*state.files, *state.extra_links, *state.pages})
            serial = state.serial
        if self._wants_json(request):
            data = {
                "meta": {"api-version": "1.1", "_last-serial": serial},
                "projects": [{"name": name} for name in names],
            }
            return self._finish(request, json.dumps(data).encode(), JSON_TYPE, serial)
        links = "".join(f'<a href="/simple/{name}/">{name}</a>\n' for name in names)
        body = f"<!DOCTYPE html><html><body>{links}</body></html>".encode()
        return self._finish(request, body, "text/html", serial)

    def _page(self, request: Request, name: str) -> Response:
        project = normalize(name)
        if project != name:
            response = Response(status=301)
            response.location = f"/simple/{project}/"
            return response
        with self._lock:
            files = list(self._state.files.get(project, ()))
            extra = list(self._state.extra_links.get(project, ()))
            serial = self._state.serials.get(project, 0)
            page = self._state.pages.get(project)
            status = self._state.statuses.get(project)
        if page is not None:
            return self._finish(request, page[0], page[1], serial)
        if not files and not extra and status is None:
            return Response("no such project", status=404)
        if status is not None and status[0] == "quarantined":
            files, extra = [], []
        if self._wants_json(request):
            body = self._json_page(project, files, extra, serial, status)
            return self._finish(request, body, JSON_TYPE, serial)
        html_page = self._html_page(project, files, extra, status)
        return self._finish(request, html_page, "text/html", serial)

    def _json_page(
        self,
        project: str,
        files: list[FakeFile],
        extra: list[str],
        serial: int,
        status: tuple[str, str | None] | None = None,
    ) -> bytes:
        entries = []
        for f in files:
            entry: dict[str, Any] = {
                "filename": f.dist.filename,
                "url": f"../../files/{f.key}/{f.dist.filename}"
                if not self.files_host
                else self.file_url(f),
                "hashes": {"sha256": f.dist.sha256} if f.hashed else {},
                "size": len(f.dist.content),
                "upload-time": f.upload_time,
            }
            if f.requires_python:
                entry["requires-python"] = f.requires_python
            if f.yanked is not False:
                entry["yanked"] = f.yanked
            if f.metadata and f.dist.metadata:
                meta_hash = {"sha256": hashlib.sha256(f.dist.metadata).hexdigest()}
                entry["core-metadata"] = meta_hash
                entry["data-dist-info-metadata"] = meta_hash
            entries.append(entry)
        entries += [_extra_entry(href) for href in extra]
        page: dict[str, Any] = {
            "meta": {"api-version": "1.1" if status is None else "1.4", "_last-serial": serial},
            "name": project,
            "versions": [],
            "files": entries,
        }
        if status is not None:
            marker = {"status": status[0]}
            if status[1]:
                marker["reason"] = status[1]
            page["project-status"] = marker
        return json.dumps(page).encode()

    def _html_page(
        self,
        project: str,
        files: list[FakeFile],
        extra: list[str],
        status: tuple[str, str | None] | None = None,
    ) -> bytes:
        meta = ""
        if status is not None:
            meta = f'<meta name="pypi:project-status" content="{escape(status[0])}">'
            if status[1]:
                meta += f'<meta name="pypi:project-status-reason" content="{escape(status[1])}">'
        out = [
            f"<!DOCTYPE html><html><head>{meta}<title>Links for {project}</title></head><body>"
        ]
        for f in files:
            href = f"/files/{f.key}/{f.dist.filename}" if not self.files_host else self.file_url(f)
            if f.hashed:
                href += f"#sha256={f.dist.sha256}"
            attrs = [f'href="{escape(href)}"']
            if f.requires_python:
                attrs.append(f'data-requires-python="{escape(f.requires_python)}"')
            if f.yanked is not False:
                attrs.append(f'data-yanked="{escape("" if f.yanked is True else str(f.yanked))}"')
            if f.metadata and f.dist.metadata:
                attrs.append(
                    f'data-core-metadata="sha256={hashlib.sha256(f.dist.metadata).hexdigest()}"'
                )
            out.append(f"<a {' '.join(attrs)}>{escape(f.dist.filename)}</a><br/>")
        out += [
            f'<a href="{escape(href)}">{escape(href.rsplit("/", 1)[-1])}</a><br/>' for href in extra
        ]
        out.append("</body></html>")
        return "\n".join(out).encode()

    def _file(self, request: Request, key: str, filename: str) -> Response:
        metadata = filename.endswith(".metadata")
        wanted = filename.removesuffix(".metadata")
        with self._lock:
            found = [
                f
                for files in self._state.files.values()
                for f in files
                if f.key == key and f.dist.filename == wanted
            ]
        if not found or (metadata and not found[0].metadata):
            return Response("no such file", status=404)
        content = found[0].dist.metadata if metadata else found[0].dist.content
        faults = self.faults if self.faults.applies(request.path) else Faults()
        if faults.wrong_hash:
            content = bytes(b ^ 0xFF for b in content[:64]) + content[64:]
        response = Response(content_type="application/octet-stream", charset=None)
        response.headers["Last-Modified"] = "Mon, 01 Jan 2024 00:00:00 GMT"
        response.app_iter = _chunked(content, truncate=faults.truncate, pause=faults.slow_body)
        response.content_length = len(content) - 100 if faults.wrong_length else len(content)
        return response


def _extra_entry(href: str) -> dict[str, Any]:
    """The PEP 691 entry of a raw link: its unquoted file name, its ``#algo=value`` hash."""
    url, _sep, fragment = href.partition("#")
    algorithm, sep, value = fragment.partition("=")
    return {
        "filename": unquote(url.rsplit("/", 1)[-1]),
        "url": url,
        "hashes": {algorithm: value} if sep else {},
    }


def _chunked(
    content: bytes, *, truncate: bool, pause: float, size: int = 64 * 1024
) -> Iterator[bytes]:
    end = len(content) // 2 if truncate else len(content)
    for start in range(0, end, size):
        if pause and start:
            time.sleep(pause)
        yield content[start : min(start + size, end)]
