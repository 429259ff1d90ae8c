"""The ``simple`` mirror source: reads an upstream that speaks the Simple API (PEP 503/691)."""

from __future__ import annotations

import logging
import threading
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from devpi_core.config import parse_size
from devpi_core.errors import NotFound, UpstreamUnavailable
from devpi_core.interfaces import MirrorSource
from devpi_core.records import UpstreamNames, UpstreamPage, UpstreamStream
from devpi_core_mirror.client import UpstreamClient, iter_body, read_limited
from devpi_core_mirror.pages import MalformedPage, parse_html, parse_json, scan_names
from devpi_core_mirror.status import status_from_page

if TYPE_CHECKING:
    from collections.abc import Iterator

    import requests

    from devpi_core.specs import MirrorSourceOptions

log = logging.getLogger(__name__)
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
DEFAULT_PAGE_LIMIT = 256 * 1024 * 1024
# Pages parsed at once, in all mirrors of the process. Parsing holds the GIL, so more threads do
# not parse faster; but each holds its decoded page (ten times the body: 20 MB and more for the
# biggest projects), and uv asks for dozens of cold pages at once.
_PARSING = threading.BoundedSemaphore(2)


def upstream_serial(response: requests.Response) -> int | None:
    """The ``X-PyPI-Last-Serial`` header as an int (None if absent or not a number)."""
    value = response.headers.get("X-PyPI-Last-Serial")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _is_json(response: requests.Response) -> bool:
    return "json" in response.headers.get("Content-Type", "").split(";")[0]


class SimpleSource(MirrorSource):
    """A Simple API upstream (PEP 691 JSON preferred, HTML as the fallback)."""

    def __init__(self, options: MirrorSourceOptions, client: UpstreamClient | None = None) -> None:
        self.options = options
        self.base = options.url if options.url.endswith("/") else options.url + "/"
        self.client = client or UpstreamClient(options)
        self.page_limit = parse_size(options.settings.get("max_page_size", DEFAULT_PAGE_LIMIT))

    def close(self) -> None:
        self.client.close()

    def get_page(self, project: str, *, etag: str | None = None) -> UpstreamPage:
        url = f"{self.base}{quote(project)}/"
        headers = {"Accept": ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        started = time.monotonic()
        response = self.client.get(url, headers=headers, timeout=self.options.timeout)
        with response:
            serial = upstream_serial(response)
            new_etag = response.headers.get("ETag")
            status = response.status_code
            if status == 304:
                return UpstreamPage("not_modified", serial=serial, etag=new_etag or etag)
            if status in (404, 410):
                return UpstreamPage("not_found", serial=serial)
            if status != 200:
                raise UpstreamUnavailable(_status_message(status, url))
            deadline = started + max(self.options.list_timeout, self.options.timeout)
            body = read_limited(response, self.page_limit, deadline)
            is_json = _is_json(response)
            parse = parse_json if is_json else parse_html
            try:
                with _PARSING:
                    files = parse(body, response.url, project)
            except MalformedPage as exc:
                raise UpstreamUnavailable(f"upstream page {url} is malformed: {exc}") from None
        project_status = status_from_page(body, is_json=is_json)
        return UpstreamPage(
            "ok", files, serial=serial, etag=new_etag, project_status=project_status
        )

    def get_names(self, *, etag: str | None = None) -> UpstreamNames:
        headers = {"Accept": ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        response = self.client.get(self.base, headers=headers, timeout=self.options.list_timeout)
        if response.status_code == 304:
            response.close()
            return UpstreamNames(None, etag)
        if response.status_code != 200:
            response.close()
            raise UpstreamUnavailable(_status_message(response.status_code, self.base))
        return UpstreamNames(self._names(response), response.headers.get("ETag"))

    def _names(self, response: requests.Response) -> Iterator[str]:
        with response:
            yield from scan_names(iter_body(response), is_json=_is_json(response))

    def open_file(self, url: str) -> UpstreamStream:
        headers = {"Accept-Encoding": "identity"}
        response = self.client.get(url, headers=headers, timeout=self.options.file_timeout)
        if response.status_code in (404, 410):
            response.close()
            # devpi-server's words, which clients look for
            raise NotFound(_status_message(response.status_code, url))
        if response.status_code != 200:
            response.close()
            raise UpstreamUnavailable(_status_message(response.status_code, url))
        size = response.headers.get("Content-Length")
        encoded = response.headers.get("Content-Encoding", "identity") != "identity"
        return UpstreamStream(
            chunks=iter_body(response),
            size=int(size) if size and size.isdigit() and not encoded else None,
            content_type=response.headers.get("Content-Type"),
            last_modified=_http_date(response.headers.get("Last-Modified")),
            close=response.close,
        )


def _status_message(status: int, url: str) -> str:
    if status in (401, 403):
        return (
            f"upstream refused access ({status}) to {url}; configure "
            "plugins.mirror.credentials for this index"
        )
    return f"error {status} getting {url}"


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
