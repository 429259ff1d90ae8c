"""Running the app under waitress until Ctrl-C or SIGTERM."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import waitress

from devpi_core import __version__, services
from devpi_core.app import make_app
from devpi_core.errors import StartupError

if TYPE_CHECKING:
    from devpi_core.config import Settings
    from devpi_core.plugins import Plugins
    from devpi_core.serverdir import ServerDir

log = logging.getLogger(__name__)
# room for the multipart framing around the largest accepted upload
BODY_SLACK = 1 << 20


def run(plugins: Plugins, settings: Settings, serverdir: ServerDir, *, announce: Callable[[str], None]) -> int:
    """Serve until interrupted; in-flight requests get up to 5 s, then the stores close."""
    app = make_app(plugins, settings, serverdir)
    server_settings = settings.server
    try:
        server = waitress.create_server(
            app,
            host=server_settings.host,
            port=server_settings.port,
            threads=server_settings.threads,
            connection_limit=server_settings.connection_limit,
            max_request_body_size=server_settings.max_upload_size + BODY_SLACK,
            ident="devpi-core",
            clear_untrusted_proxy_headers=True,
        )
    except OSError as exc:
        services.shutdown(app.registry)
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(f"port {server_settings.port} on {server_settings.host} is in use; "
                               "stop the other server or choose another --port") from None
        raise StartupError(f"cannot listen on {server_settings.host}:{server_settings.port}: "
                           f"{exc.strerror}") from None
    host = server_settings.host if ":" not in server_settings.host else f"[{server_settings.host}]"
    url = f"http://{host}:{server.effective_port}/"
    example = "root/pypi" if services.indexes(app.registry).get("root/pypi") else "USER/INDEX"
    announce(f"devpi-core {__version__} serving {server_settings.serverdir} on {url}")
    announce(f"  pip install --index-url {url}{example}/+simple/ NAME")
    announce(f"  uv pip install --index-url {url}{example}/+simple/ NAME")
    try:
        server.run()
    except KeyboardInterrupt:
        log.info("shutting down")
    finally:
        server.close()
        services.shutdown(app.registry)
    announce("devpi-core stopped")
    return 0
