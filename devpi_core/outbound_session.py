"""``requests`` sessions that obey the :class:`~devpi_core.outbound.OutboundPolicy`.

Every new connection resolves its host through the policy, which checks each address, and then
connects to one of those checked addresses (TLS still verifies, and sends SNI for, the host name).
Resolving once and connecting to the result leaves no gap for DNS rebinding, and since the check
sits under every request it covers each redirect hop as well. Through a proxy (``HTTPS_PROXY``
and friends) the proxy makes the connection, so the target's addresses are checked before the
request is handed to it.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from requests.utils import select_proxy
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection

if TYPE_CHECKING:
    from collections.abc import Mapping

    from requests import PreparedRequest, Response

    from devpi_core.outbound import OutboundPolicy

_POLICY = "outbound_policy"


class _GuardedConnection(HTTPConnection):
    def __init__(self, *args: Any, outbound_policy: OutboundPolicy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outbound_policy = outbound_policy

    def _new_conn(self) -> socket.socket:
        try:
            addresses = self.outbound_policy.addresses(self._dns_host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
        error: OSError | None = None
        for address in addresses:
            try:
                return connection.create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except OSError as exc:  # includes time-outs; try the next address like urllib3
                error = exc
        if isinstance(error, TimeoutError):
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from error
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}") from error


class _GuardedHTTPSConnection(_GuardedConnection, HTTPSConnection):
    pass


class _GuardedPool(HTTPConnectionPool):
    ConnectionCls = _GuardedConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedPoolManager(PoolManager):
    def __init__(self, outbound_policy: OutboundPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.outbound_policy = outbound_policy
        self.pool_classes_by_scheme = {"http": _GuardedPool, "https": _GuardedHTTPSPool}

    def _new_pool(
        self,
        scheme: str,
        host: str,
        port: int,
        request_context: dict[str, Any] | None = None,
    ) -> HTTPConnectionPool:
        # after the pool key was computed: the policy travels to each connection it opens
        context = dict(self.connection_pool_kw if request_context is None else request_context)
        context[_POLICY] = self.outbound_policy
        return super()._new_pool(scheme, host, port, context)


class GuardedAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose connections obey ``policy``."""

    def __init__(self, policy: OutboundPolicy, **kwargs: Any) -> None:
        self.outbound_policy = policy
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        """Pools whose connections resolve and check through the policy."""
        self._pool_connections = connections
        self._pool_maxsize = maxsize
        self._pool_block = block
        self.poolmanager = _GuardedPoolManager(
            self.outbound_policy,
            num_pools=connections,
            maxsize=maxsize,
            block=block,
            **pool_kwargs,
        )

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> Response:
        """Send; through a proxy, check the target's addresses first (the proxy connects)."""
        if proxies and select_proxy(request.url or "", dict(proxies)):
            self.outbound_policy.check_url(request.url or "")
        return super().send(
            request,
            stream=stream,
            timeout=timeout,
            verify=verify,
            cert=cert,
            proxies=dict(proxies) if proxies else None,
        )


class _NoNetrc(AuthBase):
    """No authentication unless a request brings its own: with a session-level ``auth``,
    requests does not look up ``~/.netrc``, whose entries (a ``default`` one above all) must not
    go to hosts that users pick. Proxy settings still come from the environment."""

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        return request


def guarded_session(
    policy: OutboundPolicy, *, pool_connections: int = 10, pool_maxsize: int = 10
) -> requests.Session:
    """A ``requests.Session`` whose every connection obeys ``policy`` (no retries, no
    credentials from ``~/.netrc``)."""
    session = requests.Session()
    session.auth = _NoNetrc()
    adapter = GuardedAdapter(
        policy, pool_connections=pool_connections, pool_maxsize=pool_maxsize, max_retries=0
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
