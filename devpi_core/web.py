"""Helpers for views, in core and in plugins: replies, request parsing, access checks, URLs."""

from __future__ import annotations

import functools
import json
import re
from typing import TYPE_CHECKING, Any

from pyramid.response import Response
from webob.acceptparse import create_accept_header

from devpi_core import content_policy, services
from devpi_core.errors import BadRequest, Forbidden, NotFound, UnsupportedMediaType
from devpi_core.model import acl
from devpi_core.proxies import outside_url_header
from devpi_core.records import IndexRecord
from devpi_core.simple_pages import SimplePages

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pyramid.request import Request

    from devpi_core.indextypes import Contributors
    from devpi_core.records import Identity

MAX_JSON_BODY = 16 * 1024 * 1024
# devpi's own bodies nest a few levels (a tox report about six); custom_data is free-form
MAX_JSON_DEPTH = 64
_JSON_SUFFIX = re.compile(r"^application/[a-z0-9.+-]+\+json$")
_SURROGATE = re.compile("[\ud800-\udfff]")
INSTALLER_UA = re.compile(r"([^ ]* )*(distribute|setuptools|pip|pex|uv)/.*")
JSON_TYPE = "application/json"


# -- replies --------------------------------------------------------------------------------
def api_reply(
    request: Request,
    result_type: str | None = None,
    result: Any = None,
    *,
    message: str | None = None,
    status: int = 200,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """devpi's JSON envelope: ``type`` and ``result`` together, ``message`` when given, and
    ``extra`` keys beside them (new keys only: devpi-client ignores what it does not know)."""
    body: dict[str, Any] = {}
    if result_type is not None:
        body["type"] = result_type
        body["result"] = result
    if message:
        body["message"] = message
    if extra:
        body.update(extra)
    return json_response(body, status=status)


def json_response(data: Any, *, status: int = 200) -> Response:
    """``data`` as indented JSON with a trailing newline, the way devpi answers."""
    text = json.dumps(data, indent=2) + "\n"
    return Response(text.encode("utf-8"), status=status, content_type=JSON_TYPE, charset="utf-8")


# -- request parsing ------------------------------------------------------------------------
def json_body(request: Request) -> Any:
    """The request body parsed as JSON, or a 4xx saying why it is not.

    A body sent as a form or as text is refused (415): those are the types another site's
    page can make a browser send, and devpi-client, curl's ``--json`` and scripts send
    ``application/json``. Nesting deeper than :data:`MAX_JSON_DEPTH`, lone surrogates (which
    cannot be stored or answered as UTF-8) and ``NaN``/``Infinity`` are refused with a 400.
    """
    require_json_content_type(request)
    length = request.content_length
    if length is not None and length > MAX_JSON_BODY:
        raise BadRequest(f"JSON body larger than {MAX_JSON_BODY} bytes")
    try:
        raw = request.body_file.read(MAX_JSON_BODY + 1)
    except OSError:
        raise BadRequest("could not read the request body") from None
    if len(raw) > MAX_JSON_BODY:
        raise BadRequest(f"JSON body larger than {MAX_JSON_BODY} bytes")
    if not raw.strip():
        raise BadRequest("expected a JSON body, got nothing")
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise BadRequest(f"JSON body nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON body: {exc}") from None
    check_json_value(data)
    return data


def require_json_content_type(request: Request) -> None:
    """415 unless the body is declared JSON (``application/json`` or ``application/*+json``).

    A body without a Content-Type is accepted: scripts send that, and the only way a browser
    sends one (``fetch``) also sends ``Origin``, which :mod:`devpi_core.csrf` checks.
    """
    declared = request.environ.get("CONTENT_TYPE", "")
    media = declared.split(";", 1)[0].strip().lower()
    if media and media != JSON_TYPE and not _JSON_SUFFIX.match(media):
        raise UnsupportedMediaType(
            f"expected a JSON body with 'Content-Type: {JSON_TYPE}', got {media[:100]!r}"
        )


def check_json_value(data: Any) -> None:
    """400 for nesting deeper than :data:`MAX_JSON_DEPTH` or strings with lone surrogates."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise BadRequest(f"JSON body nested deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(value, dict):
                for key, item in value.items():
                    _check_text(key)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)


def _check_text(text: str) -> None:
    if _SURROGATE.search(text):
        raise BadRequest("JSON body holds a lone surrogate (\\ud800-\\udfff), not valid text")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400."""
    data = json_body(request)
    if not isinstance(data, dict):
        raise BadRequest(f"expected a JSON object, got {type(data).__name__}")
    return data


# -- content negotiation --------------------------------------------------------------------
@functools.lru_cache(maxsize=1024)
def best_offer(header: str | None, offers: tuple[str, ...]) -> str | None:
    """The media type of ``offers`` that an ``Accept`` header ranks highest, or None.

    ``header`` is the raw header value, None when the request has none
    (``request.environ.get("HTTP_ACCEPT")``). RFC 7231 rules as WebOb applies them: q-values
    rank, the more specific range (``text/html`` over ``text/*`` over ``*/*``) sets an offer's
    q, ``q=0`` refuses, ties go to the earlier offer. A missing or unparsable header accepts
    every offer (so the first wins); an empty one accepts none. Clients send a handful of
    distinct headers, so answers are cached.
    """
    found = create_accept_header(header).acceptable_offers(offers)
    return found[0][0] if found else None


def wants_json(request: Request) -> bool:
    """Whether the client asked for JSON (devpi: the Accept header contains it)."""
    return JSON_TYPE in (request.headers.get("Accept") or "")


def require_json_accept(request: Request) -> None:
    """devpi answers project JSON only to ``Accept: application/json``; 415 otherwise."""
    if not wants_json(request):
        raise UnsupportedMediaType("this resource is JSON; send 'Accept: application/json'")


def is_installer(request: Request) -> bool:
    """Whether the User-Agent is pip, uv, setuptools or another installer."""
    return bool(INSTALLER_UA.match(request.user_agent or ""))


def flag(request: Request, name: str) -> bool:
    """Whether query parameter ``name`` is present (any value, as devpi reads ``?force``)."""
    return name in request.GET


# -- identity and access --------------------------------------------------------------------
def identity(request: Request) -> Identity | None:
    """Who the request is (None for anonymous)."""
    found: Identity | None = request.identity
    return found


def restrict_modify(request: Request) -> tuple[str, ...] | None:
    """The configured ``restrict_modify`` principals."""
    return services.settings(request).server.restrict_modify


def require_user_permission(
    request: Request, permission: str, target_user: str | None, *, message: str | None = None
) -> None:
    """403 unless the request has ``permission`` on ``target_user``.

    devpi-server answers 403 to every refused change of users and indexes, anonymous or not
    (a 401 would make devpi-client drop its login); ``message`` replaces devpi's wording.
    """
    who = identity(request)
    if not acl.user_allowed(permission, who, target_user, restrict_modify(request)):
        raise Forbidden(message or f"no permission to {_USER_VERBS[permission]} {target_user}")


_USER_VERBS = {
    "user_create": "create user",
    "user_modify": "modify user",
    "user_modify_password": "change password for user",
    "user_delete": "delete user",
    "index_create": "create an index for user",
}


def can(request: Request, permission: str, record: IndexRecord) -> bool:
    """Whether the request has ``permission`` on index ``record``."""
    if permission == "pkg_read" and acl.is_public(record):
        return True  # no need to authenticate the request
    indexes = services.indexes(request)
    itype = None
    if permission in _TYPE_PERMISSIONS and indexes.spec(record) is not None:
        itype = indexes.type_of(record)
    return acl.index_allowed(
        permission,
        identity(request),
        record,
        restrict_modify(request),
        granted=itype.allows if itype is not None else None,
    )


# permissions an index's type grants besides its owner and the admins (``acl_upload`` of a stage)
_TYPE_PERMISSIONS = ("upload", "toxresult_upload", "del_entry")


class RequestReader:
    """The request as a reader of indexes; authenticates only when an index is not public."""

    def __init__(self, request: Request) -> None:
        self.request = request

    def key(self) -> frozenset[str]:
        """The request's principals."""
        return acl.principals(identity(self.request))

    def can_read(self, record: IndexRecord) -> bool:
        """``acl_read`` of ``record`` (plus owner and admins)."""
        return can(self.request, "pkg_read", record)


def contributing_indexes(request: Request, record: IndexRecord, project: str) -> Contributors:
    """The indexes whose files make up ``project`` on ``record`` for this request, and the
    mirrors ``mirror_whitelist`` holds back: exactly what its simple page merges.

    The simple pages' own resolver answers, with its resolution orders cached per serial, so
    the JSON API and a UI show the same indexes as the page installers read.
    """
    resolver = services.lookup(request.registry, SimplePages).resolver
    gen = resolver.sync(services.metadata_store(request).current_serial())
    return resolver.contributors(resolver.order(gen, record, RequestReader(request)), project)


def held_versions(request: Request, record: IndexRecord, project: str) -> Mapping[str, str]:
    """``{version: message}`` of the versions of normalized ``project`` that ``record`` holds
    back (the serve policies' decision): listings leave them out, their files answer 403."""
    pages = services.lookup(request.registry, SimplePages)
    return pages.held(record, project, reader=RequestReader(request))


def readable_index_configs(request: Request, user: str) -> dict[str, dict[str, Any]]:
    """``{index name: config}`` of the indexes of ``user`` the request may read.

    Listings leave the others out entirely, as if they did not exist for this caller: their
    configuration (description, ``custom_data``, ACLs) is as private as their content.
    """
    configs = services.indexes(request).of_user(user)
    return {
        name: config
        for name, config in configs.items()
        if can(request, "pkg_read", IndexRecord(user, name, config))
    }


def require_index_permission(request: Request, permission: str, record: IndexRecord) -> None:
    """Raise 401/403 unless the request has ``permission`` on ``record``.

    As devpi-server: reading (``acl_read``) and uploading answer an anonymous request 401 with
    ``WWW-Authenticate``, so pip, uv and twine retry with credentials; every other refusal is
    403 (devpi-client drops its login on a 401).
    """
    if can(request, permission, record):
        return
    message = f"no permission to {_VERBS.get(permission, permission)} {record.fullname}"
    if permission == "pkg_read" and "devpi-client" in (request.user_agent or ""):
        # devpi-client treats a 403 on a read as "login first" and a 401 as fatal; devpi's
        # own read-restricting setups answer devpi-client with 403 for that reason
        raise Forbidden(message)
    if permission in ("pkg_read", "upload"):
        raise acl.deny(identity(request), message)
    raise Forbidden(message)


def changeable_index(request: Request, permission: str) -> IndexRecord:
    """The index from the URL, checked for ``permission`` (a change: modify, delete, remove).

    An index that does not exist grants no permission, so, as devpi-server does, changing it
    is refused with 403, not 404; whoever may create it is told that it does not exist.
    """
    user = request.matchdict["user"]
    name = request.matchdict["index"]
    record = services.indexes(request).get(f"{user}/{name}")
    if record is not None:
        require_index_permission(request, permission, record)
        return record
    message = f"no permission to {_VERBS.get(permission, permission)} {user}/{name}"
    if acl.user_allowed("index_create", identity(request), user, restrict_modify(request)):
        message += " (no such index)"
    raise Forbidden(message)


_VERBS = {
    "pkg_read": "read",
    "upload": "upload to",
    "toxresult_upload": "upload tox results to",
    "index_modify": "modify",
    "index_delete": "delete",
    "del_entry": "delete from",
}


def index_from_url(request: Request) -> IndexRecord:
    """The index named by the ``user``/``index`` URL parts, or a 404."""
    user = request.matchdict["user"]
    name = request.matchdict["index"]
    record = services.indexes(request).get(f"{user}/{name}")
    if record is None:
        if services.users(request).get(user) is None:
            raise NotFound(f"no user {user!r}")
        raise NotFound(f"no index {user}/{name}")
    return record


def readable_index(request: Request) -> IndexRecord:
    """The index from the URL, checked for read access (``acl_read``)."""
    record = index_from_url(request)
    require_index_permission(request, "pkg_read", record)
    return record


def client_address(request: Request) -> str:
    """The client's address: a trusted proxy's ``X-Real-IP``, else the connection's peer.

    Believed only from ``server.trusted_proxies``, as ``X-Outside-Url`` (:mod:`.proxies`).
    """
    environ = request.environ
    peer = str(environ.get("REMOTE_ADDR") or "-")
    real = str(environ.get("HTTP_X_REAL_IP") or "").strip()
    if real and peer in services.settings(request).server.trusted_proxies:
        return real[:64]  # an address, not a place to store text
    return peer


# -- URLs -----------------------------------------------------------------------------------
def server_url(request: Request) -> str:
    """The server's root URL as clients see it.

    A trusted proxy's ``X-Outside-Url`` wins, then the ``outside_url`` setting, then the URL
    the request came in on.
    """
    outside = outside_url_header(request) or services.settings(request).server.outside_url
    if outside:
        return outside.rstrip("/")
    return str(request.application_url).rstrip("/")


def absolute(request: Request, relpath: str) -> str:
    """The absolute URL of ``relpath`` (a path from the server root)."""
    return f"{server_url(request)}/{relpath.lstrip('/')}"


def docs_root(request: Request) -> str:
    """The root URL for links to documentation: ``server.docs_url``, else the server's own."""
    docs_url = services.settings(request).server.docs_url
    return docs_url.rstrip("/") if docs_url else server_url(request)


def doc_headers(request: Request, content_type: str) -> dict[str, str]:
    """Headers for a documentation file of ``content_type``: rendered, but in a CSP sandbox.

    Scripts run only on the ``server.docs_url`` origin with ``docs_allow_scripts``; see
    :mod:`devpi_core.content_policy`.
    """
    server = services.settings(request).server
    scripts = (
        server.docs_allow_scripts
        and server.docs_url is not None
        and content_policy.on_origin(request, server.docs_url)
    )
    headers = {
        "X-Content-Type-Options": content_policy.NOSNIFF,
        "Content-Security-Policy": (
            content_policy.DOCS_SCRIPTS_SANDBOX if scripts else content_policy.DOCS_SANDBOX
        ),
    }
    if content_type in content_policy.FONT_TYPES and not scripts:
        headers["Access-Control-Allow-Origin"] = "*"
    return headers
