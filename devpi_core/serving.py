"""Running the app under waitress until Ctrl-C or SIGTERM."""

from __future__ import annotations

import errno
import logging
import socket
from typing import TYPE_CHECKING, Any

from devpi_core import __version__, services
from devpi_core.app import make_app
from devpi_core.bootstrap import initialise_data
from devpi_core.config import Settings
from devpi_core.connections import RequestDeadline, create_server
from devpi_core.errors import StartupError
from devpi_core.heap import limit_malloc_arenas, settle_garbage_collector

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyramid.registry import Registry
    from pyramid.router import Router

    from devpi_core.config import ServerSettings
    from devpi_core.plugins import Plugins
    from devpi_core.serverdir import ServerDir

log = logging.getLogger(__name__)
# waitress reads and sends response files in chunks of the socket's initial send buffer size
# (16 KiB by default, which the kernel then grows on its own): thousands of reads, each
# releasing the GIL, per megabyte page or wheel. A fixed 256 KiB buffer made cached pages and
# wheels 1.5-3x faster; larger ones were slower again.
SEND_BUFFER = 256 * 1024  # the kernel doubles it: 512 KiB chunks, below the mmap threshold
SOCKET_OPTIONS = [
    (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),
    (socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER),
]
# room for the multipart framing around the largest accepted upload
BODY_SLACK = 1 << 20


def initialise_if_empty(registry: Registry) -> list[str]:
    """On a store without user root (a new server directory): create root and default indexes."""
    users = services.users(registry)
    if users.get("root") is not None:
        return []
    return initialise_data(
        users,
        services.indexes(registry),
        plugins=services.plugins(registry),
        settings=services.settings(registry),
        root_password="",
        default_indexes=True,
    )


def run(
    plugins: Plugins, settings: Settings, serverdir: ServerDir, *, announce: Callable[[str], None]
) -> int:
    """Serve until Ctrl-C or SIGTERM; in-flight requests get up to 5 s, then the stores close."""
    limit_malloc_arenas()
    app = make_app(plugins, settings, serverdir)
    try:
        server = _listen(app, settings.server)
        # not a create_server() argument: waitress applies it to each accepted connection
        server.adj.socket_options = SOCKET_OPTIONS
        # /+status reports the port actually bound (it differs from the setting with --port 0)
        services.register(
            app.registry, Settings, settings.with_overrides(port=server.effective_port)
        )
        try:
            created = initialise_if_empty(app.registry)
            if created:
                log.info("initialised %s: %s", settings.server.serverdir, ", ".join(created))
            host = settings.server.host
            url = f"http://{f'[{host}]' if ':' in host else host}:{server.effective_port}/"
            announce(f"devpi-core {__version__} serving {settings.server.serverdir} on {url}")
            root_url = settings.server.outside_url or url
            announce(f"  {client_setup(root_url, example_index(app.registry))}")
            settle_garbage_collector()
            # waitress turns Ctrl-C (and SIGTERM, see cli) into a return after its workers finish
            server.run()
        except KeyboardInterrupt:
            pass  # before the loop ran: nothing in flight, the same clean stop
        finally:
            log.info("shutting down")
            server.close()
    finally:
        services.shutdown(app.registry)
    announce("devpi-core stopped")
    return 0


# A streamed answer (a mirror file while it downloads) pauses while this much is waiting for
# the client. waitress's default is 16 MB, but its buffer moves to a temp file past 1 MB
# (``outbuf_overflow``): with uv's dozens of parallel downloads nearly every cold byte was
# written to such a file and read back (0.2-0.5 s more server CPU for the lock's 220 MB). Below
# 1 MB less a 256 KiB chunk it stays in memory. Files on disk and rendered pages are handed to
# waitress whole and never wait on this.
OUTBUF_HIGH_WATERMARK = 512 * 1024


def _listen(app: Router, server: ServerSettings) -> Any:
    try:
        return create_server(
            app,
            deadline=RequestDeadline(server.request_timeout, server.request_min_rate),
            host=server.host,
            port=server.port,
            threads=server.threads,
            connection_limit=server.connection_limit,
            channel_timeout=server.idle_timeout,
            # how often idle connections and request deadlines are checked
            cleanup_interval=1,
            max_request_body_size=server.max_upload_size + BODY_SLACK,
            ident="devpi-core",
            outbuf_high_watermark=OUTBUF_HIGH_WATERMARK,
            clear_untrusted_proxy_headers=True,
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {server.port} on {server.host} is in use; "
                "stop the other server or choose another --port"
            ) from None
        raise StartupError(
            f"cannot listen on {server.host}:{server.port}: {exc.strerror}; "
            "choose another --host or --port"
        ) from None


def example_index(registry: Registry) -> str | None:
    """The index to suggest to pip and uv: ``root/pypi`` if it exists, else the first one."""
    indexes = services.indexes(registry)
    if indexes.get("root/pypi") is not None:
        return "root/pypi"
    for user in services.users(registry).names():
        names = sorted(indexes.of_user(user))
        if names:
            return f"{user}/{names[0]}"
    return None


def client_setup(root_url: str, index: str | None) -> str:
    """The one line that points pip and uv at ``index`` on the server at ``root_url``."""
    simple = f"{root_url.rstrip('/')}/{index or 'USER/INDEX'}/+simple/"
    return f"export PIP_INDEX_URL={simple} UV_DEFAULT_INDEX={simple}"
