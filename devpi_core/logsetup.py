"""Logging: a request id on every record, text or JSON lines. Configured only by the CLI."""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from collections.abc import Mapping

    from devpi_core.config import LoggingSettings

request_id: ContextVar[str] = ContextVar("devpi_core_request_id", default="-")


def logged_path(environ: Mapping[str, Any]) -> str:
    """The request's path and query for logs: works for undecodable URLs, cut at 500 chars."""
    # PATH_INFO is latin-1 text by PEP 3333; re-quoting never fails, unlike decoding as UTF-8.
    raw = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    path = quote(raw.encode("latin-1", "replace"), safe="/:@!$&'()*+,;=~")
    query = environ.get("QUERY_STRING", "")
    text = f"{path}?{query}" if query else path
    return text if len(text) <= 500 else text[:500] + "..."


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` from the current request (``-`` outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data)


TEXT_FORMAT = "%(asctime)s %(levelname)-5s [%(request_id)s] %(name)s: %(message)s"


def configure(settings: LoggingSettings) -> None:
    """Install one handler on the root logger according to ``settings``."""
    handler: logging.Handler
    if settings.file:
        handler = logging.FileHandler(settings.file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level)
    logging.getLogger("devpi_core.access").disabled = not settings.access_log
    # waitress logs every queue backlog at WARNING; keep it but not its noisy debug
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
