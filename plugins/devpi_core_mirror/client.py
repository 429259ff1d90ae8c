"""HTTP to an upstream: one pooled ``requests`` session that obeys the server's outbound host
policy, time-outs on every call, redirects followed here (a few hops, each checked, credentials
never carried to another origin), credentials only for the upstream's own origin, 401/403
retries through the ``devpi_mirror_auth`` hook, and a breaker that stops waiting on an upstream
that keeps failing to answer.
"""

from __future__ import annotations

import logging
import platform
import threading
import time
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import requests

from devpi_core import __version__
from devpi_core.errors import UpstreamUnavailable
from devpi_core.outbound import OutboundDenied, OutboundPolicy, origin
from devpi_core.outbound_session import guarded_session

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from devpi_core.specs import MirrorSourceOptions

log = logging.getLogger(__name__)
CHUNK = 256 * 1024
BREAKER_THRESHOLD = 3
BREAKER_OPEN = 10.0
MAX_REDIRECTS = 10
REDIRECTS = (301, 302, 303, 307, 308)


def user_agent() -> str:
    """``devpi-core/<version> (requests/<v>; py<v>; <system>)``."""
    return (
        f"devpi-core/{__version__} (requests/{getattr(requests, '__version__', '?')}; "
        f"py{platform.python_version()}; {platform.system()})"
    )


class Breaker:
    """Counts consecutive failures to reach an upstream; after a few, fail fast for a while.

    A down or black-holed upstream then costs one time-out, not one per request, while the
    mirror keeps serving what it has cached.
    """

    def __init__(self, threshold: int = BREAKER_THRESHOLD, open_for: float = BREAKER_OPEN) -> None:
        self.threshold = threshold
        self.open_for = open_for
        self.failures = 0
        self.open_until = 0.0
        self.last_error = ""
        self._lock = threading.Lock()

    def check(self, what: str) -> None:
        """Raise at once while the breaker is open."""
        if time.monotonic() < self.open_until:
            raise UpstreamUnavailable(
                f"upstream unreachable ({self.last_error}); not asking for "
                f"{what} again for a few seconds"
            )

    def failed(self, message: str) -> None:
        """Record a failure to get any answer."""
        with self._lock:
            self.failures += 1
            self.last_error = message
            if self.failures >= self.threshold:
                if self.open_until <= time.monotonic():
                    log.warning(
                        "upstream unreachable %s times in a row (%s); failing fast for %.0f s",
                        self.failures,
                        message,
                        self.open_for,
                    )
                self.open_until = time.monotonic() + self.open_for

    def succeeded(self) -> None:
        """Record an answer (any HTTP status)."""
        if self.failures:
            with self._lock:
                self.failures = 0
                self.open_until = 0.0


class UpstreamClient:
    """GET requests to one upstream for one mirror index."""

    def __init__(
        self, options: MirrorSourceOptions, session: requests.Session | None = None
    ) -> None:
        self.options = options
        self.session = session or _new_session(options.outbound)
        self.origin = origin(options.url)
        self.breaker = Breaker()
        self.requests = 0

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()

    def get(
        self, url: str, *, headers: Mapping[str, str], timeout: float, stream: bool = True
    ) -> requests.Response:
        """GET ``url``; transport failures become :class:`UpstreamUnavailable` (504 on time-out),
        and so does a host the outbound policy refuses (on any redirect hop).

        On 401/403 the values of the ``devpi_mirror_auth`` hook are tried in turn.
        """
        self.breaker.check(url)
        response = self._send(url, headers, timeout, stream, None)
        if response.status_code in (401, 403):
            for value in self.options.extra_authorization(response.headers.get("WWW-Authenticate")):
                retry = self._send(url, headers, timeout, stream, value)
                if retry.status_code not in (401, 403):
                    response.close()
                    return retry
                retry.close()
        return response

    def _send(
        self,
        url: str,
        headers: Mapping[str, str],
        timeout: float,
        stream: bool,
        authorization: str | None,
    ) -> requests.Response:
        """GET, following redirects here: every hop goes through the outbound policy (the
        session's connections), and credentials go only to the upstream's own origin."""
        for _hop in range(MAX_REDIRECTS + 1):
            response = self._hop(url, headers, timeout, stream, authorization)
            location = response.headers.get("Location")
            if response.status_code not in REDIRECTS or not location:
                return response
            response.close()
            target = urljoin(url, location)
            if urlsplit(target).scheme not in ("http", "https"):
                raise UpstreamUnavailable(f"upstream redirected {url} to a non-HTTP URL")
            url = target
        raise UpstreamUnavailable(f"upstream redirected more than {MAX_REDIRECTS} times")

    def _hop(
        self,
        url: str,
        headers: Mapping[str, str],
        timeout: float,
        stream: bool,
        authorization: str | None,
    ) -> requests.Response:
        hdrs = {"User-Agent": self.options.user_agent, **headers}
        same_origin = origin(url) == self.origin
        if authorization is not None and same_origin:
            hdrs["Authorization"] = authorization
        auth = self.options.credentials if same_origin and authorization is None else None
        self.requests += 1
        try:
            response = self.session.get(
                url,
                headers=hdrs,
                timeout=(timeout, timeout),
                stream=stream,
                auth=auth,
                allow_redirects=False,
            )
        except OutboundDenied as exc:
            # the server's own policy, not the upstream's failure: no breaker, no remote text
            raise UpstreamUnavailable(exc.message) from None
        except requests.Timeout:
            self.breaker.failed(f"time-out after {timeout:g} s")
            raise UpstreamUnavailable(
                f"upstream did not answer within {timeout:g} s: {url}", status=504
            ) from None
        except requests.RequestException as exc:
            self.breaker.failed(type(exc).__name__)
            raise UpstreamUnavailable(f"cannot reach upstream for {url}: {_reason(exc)}") from None
        self.breaker.succeeded()
        return response


def read_limited(response: requests.Response, limit: int, deadline: float) -> bytes:
    """The whole (decoded) body, refusing more than ``limit`` bytes or running past ``deadline``."""
    parts = []
    total = 0
    for chunk in iter_body(response):
        total += len(chunk)
        if total > limit:
            raise UpstreamUnavailable(f"upstream answer for {response.url} exceeds {limit} bytes")
        if time.monotonic() > deadline:
            raise UpstreamUnavailable(
                f"upstream answer for {response.url} took too long", status=504
            )
        parts.append(chunk)
    return b"".join(parts)


def iter_body(response: requests.Response, chunk_size: int = CHUNK) -> Iterator[bytes]:
    """Chunks of the body; a broken or truncated transfer becomes :class:`UpstreamUnavailable`."""
    try:
        yield from response.iter_content(chunk_size)
    except requests.Timeout:
        raise UpstreamUnavailable(f"upstream stopped sending {response.url}", status=504) from None
    except (requests.RequestException, OSError) as exc:
        raise UpstreamUnavailable(
            f"upstream transfer of {response.url} broke off: {_reason(exc)}"
        ) from None


def _reason(exc: BaseException) -> str:
    # requests nests the interesting part (refused, reset, name resolution) a few levels down
    text = str(exc)
    for marker in (
        "Connection refused",
        "Connection reset",
        "Name or service not known",
        "IncompleteRead",
        "Read timed out",
    ):
        if marker in text:
            return marker
    return type(exc).__name__


def _new_session(policy: OutboundPolicy) -> requests.Session:
    return guarded_session(policy, pool_connections=4, pool_maxsize=32)
