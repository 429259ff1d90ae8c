"""Views the stage type adds: uploads, push, tox results, yanking, documentation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyramid.response import Response
from pyramid.view import view_config

from devpi_core import services
from devpi_core.errors import BadRequest, NotFound, PayloadTooLarge
from devpi_core.model.names import is_prerelease, normalize, version_sort_key
from devpi_core.web import (
    api_reply,
    can,
    doc_headers,
    identity,
    index_from_url,
    json_body,
    json_object,
    readable_index,
    require_index_permission,
)
from devpi_core_stages import docs, push, settings, toxresults, upload
from devpi_core_stages.stage import DOCZIP, StageIndex

if TYPE_CHECKING:
    from pyramid.config import Configurator
    from pyramid.request import Request

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def _username(request: Request) -> str | None:
    who = identity(request)
    return who.username if who else None


@view_config(
    route_name="index", request_method="POST", header=f"Content-Type:^({'|'.join(FORM_TYPES)})"
)
def upload_view(request: Request) -> Response:
    """The legacy upload API (``:action`` file_upload, submit or doc_upload)."""
    record = index_from_url(request)
    stage = upload.stage_of(request, record)
    limit = stage.env.max_upload_size + (1 << 20)
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"upload larger than the limit of {stage.env.max_upload_size} bytes")
    require_index_permission(request, "upload", record)
    try:
        form = request.POST
    except (ValueError, OSError) as exc:
        raise BadRequest(f"malformed upload form: {exc}") from None
    action = form.get(":action")
    if action == "register":
        raise BadRequest("action 'register' not supported; use 'submit'")
    handler = upload.ACTIONS.get(action or "")
    if handler is None:
        raise BadRequest(f"unknown or missing :action {action!r}")
    outcome = handler(request, stage, form, _username(request))
    response = Response(b"", content_type="text/plain", charset="utf-8")
    response.status = f"200 {outcome.reason}"
    return response


@view_config(route_name="index", request_method=("POST", "PUSH"))
def push_view(request: Request) -> Response:
    """Push a release to another index, here or on another server (devpi's PUSH)."""
    record = readable_index(request)
    return push.push(request, record, json_object(request))


@view_config(route_name="file_f", request_method="POST")
def toxresult_view(request: Request) -> Response:
    """Attach a tox result (JSON) to a release file.

    Read access comes first, so an index behind ``acl_read`` answers 401/403 whether or not
    the file exists.
    """
    record = readable_index(request)
    stage = upload.stage_of(request, record)
    relpath = f"{record.fullname}/+f/{request.matchdict['relpath']}"
    ref = stage.get_file(relpath)
    if ref is None or ref.rel != "releasefile":
        raise NotFound(f"no release file {relpath}")
    if not can(request, "toxresult_upload", record):
        raise toxresults.forbidden()
    limits = settings.stages_settings(request)
    toxresults.check_length(request.content_length, limits)
    data = json_body(request)
    path = toxresults.store(request, stage, ref, data, _username(request), limits=limits)
    return api_reply(request, "toxresultpath", path)


@view_config(route_name="version", request_method="PATCH")
def yank_view(request: Request) -> Response:
    """Yank or un-yank a release (PEP 592): ``{"yanked": "reason" | true | false}``."""
    record = index_from_url(request)
    stage = upload.stage_of(request, record)
    require_index_permission(request, "upload", record)
    body = json_object(request)
    if set(body) != {"yanked"} or not isinstance(body["yanked"], (bool, str)):
        raise BadRequest('expected {"yanked": "reason"}, {"yanked": true} or {"yanked": false}')
    project = normalize(request.matchdict["project"])
    version = request.matchdict["version"]
    stage.set_yanked(project, version, body["yanked"])
    state = "un-yanked" if body["yanked"] is False else "yanked"
    return api_reply(request, message=f"{project} {version} {state}")


def _doc_version(stage: StageIndex, project: str, version: str) -> str:
    if version not in ("latest", "stable"):
        return version
    with_docs = [
        v
        for v, verdata in stage.versions(project).items()
        if any(link["rel"] == DOCZIP for link in verdata.get("+links", ()))
    ]
    if version == "latest":
        candidates = with_docs
    else:
        candidates = [v for v in with_docs if not is_prerelease(v)]
    if not candidates:
        raise NotFound(f"no documentation for {project} ({version})")
    return max(candidates, key=version_sort_key)


@view_config(route_name="doc", request_method=("GET", "HEAD"))
def doc_view(request: Request) -> Response:
    """A file of a release's documentation, read from its zip."""
    record = readable_index(request)
    stage = upload.stage_of(request, record)
    project = normalize(request.matchdict["project"])
    version = _doc_version(stage, project, request.matchdict["version"])
    verdata = stage.version(project, version)
    links = [link for link in (verdata or {}).get("+links", ()) if link["rel"] == DOCZIP]
    if not links:
        raise NotFound(f"no documentation for {project} {version}")
    ref = stage.get_file(links[-1]["relpath"])
    if ref is None or ref.sha256 is None:
        raise NotFound(f"no documentation for {project} {version}")
    etag = f'"{ref.sha256}"'
    if ref.sha256 in request.if_none_match:
        response = Response(status=304, headers={"ETag": etag})
        response.headers.update(doc_headers(request, ""))
        return response
    blob = services.blob_store(request).open(ref.sha256)
    doc = docs.open_member(blob, request.matchdict["relpath"] or "", head=request.method == "HEAD")
    response = Response(content_type=doc.content_type, charset=None)
    if doc.body is not None:
        response.app_iter = doc.body
    response.content_length = doc.size
    response.headers["ETag"] = etag
    response.headers.update(doc_headers(request, doc.content_type))
    return response


def includeme(config: Configurator) -> None:
    """Read ``plugins.stages`` and scan these views (core declares the ``doc`` route: see
    ``devpi_core.content_policy``)."""
    settings.register(config.registry)
    config.scan("devpi_core_stages.views")
