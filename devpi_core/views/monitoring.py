"""Operations endpoints: ``GET /+metrics`` (Prometheus) and ``GET /+ready`` (load balancers).

Neither needs a login: a load balancer's health check and a Prometheus scraper carry no
credentials. Neither reveals names of users, indexes or projects.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST
from pyramid.response import Response
from pyramid.view import view_config

from devpi_core import services
from devpi_core.metrics import Metrics
from devpi_core.web import json_response

if TYPE_CHECKING:
    from pyramid.request import Request

log = logging.getLogger(__name__)


@view_config(route_name="metrics", request_method="GET")
def metrics(request: Request) -> Response:
    """This process's metrics in the Prometheus text format."""
    body = services.lookup(request.registry, Metrics).exposition()
    response = Response(body, content_type=CONTENT_TYPE_LATEST.split(";")[0], charset="utf-8")
    response.cache_control = "no-store"
    return response


@view_config(route_name="ready", request_method=("GET", "HEAD"))
def ready(request: Request) -> Response:
    """200 when this node reaches its metadata and blob stores, else 503; JSON either way."""
    checks: dict[str, str] = {}
    result: dict[str, Any] = {"checks": checks}
    try:
        with services.metadata_store(request).read() as tx:
            result["serial"] = tx.serial
        checks["metadata"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", and is reported
        checks["metadata"] = _failed("metadata", exc)
    try:
        services.blob_store(request).check()
        checks["blobs"] = "ok"
    except Exception as exc:  # noqa: BLE001 - as above
        checks["blobs"] = _failed("blobs", exc)
    result["ready"] = all(value == "ok" for value in checks.values())
    response = json_response(result, status=200 if result["ready"] else 503)
    response.cache_control = "no-store"
    return response


def _failed(store: str, exc: Exception) -> str:
    log.warning("not ready: the %s store failed its check: %s", store, exc)
    return f"error: {type(exc).__name__}"
