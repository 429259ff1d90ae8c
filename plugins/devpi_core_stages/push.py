"""Push: copy a release to another index on this server, or upload it to another server.

A push to another server (``posturl``) makes this server send requests where the pusher says,
so it needs upload permission on the source index (not only read access), goes only to hosts
the outbound policy allows, follows no redirects, and reports the remote status and URL, never
the remote answer's text.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import requests

from devpi_core import services
from devpi_core.blobs import BlobIngest
from devpi_core.errors import BadRequest, Gone, NotFound, Unauthorized, UpstreamUnavailable
from devpi_core.model.acl import deny
from devpi_core.model.indexes import split_fullname
from devpi_core.model.names import check_project, check_version, normalize
from devpi_core.model.relpaths import hashdir_relpath
from devpi_core.outbound_session import guarded_session
from devpi_core.web import api_reply, can, identity
from devpi_core_stages import filelog
from devpi_core_stages.filenames import check_release_filename
from devpi_core_stages.stage import DOCZIP, RELEASE, TOXRESULT, StageIndex
from devpi_core_stages.storing import NewBlobs
from devpi_core_stages.upload import stage_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pyramid.request import Request
    from pyramid.response import Response

    from devpi_core.indextypes import FileRef, IndexType
    from devpi_core.records import IndexRecord

log = logging.getLogger(__name__)
KNOWN = {
    "name",
    "version",
    "targetindex",
    "posturl",
    "username",
    "password",
    "register_project",
    "no_docs",
    "only_docs",
}
TIMEOUT = 60


def _release_links(
    request: Request, source: IndexType, name: str, version: str, body: Mapping[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    project = normalize(name)
    # a mirror reads (or revalidates) its upstream page first, as for a page request: a
    # project nobody asked this mirror for yet has versions too
    source.page_token(project)
    verdata = source.version(project, version)
    if verdata is None:
        raise BadRequest(f"no version {version!r} of {name!r} on {source.name}")
    if body.get("no_docs") and body.get("only_docs"):
        raise BadRequest("no_docs and only_docs exclude each other")
    links = list(verdata.get("+links", ()))
    if body.get("no_docs"):
        links = [link for link in links if link["rel"] != DOCZIP]
    if body.get("only_docs"):
        links = [link for link in links if link["rel"] == DOCZIP]
    if not links:
        raise NotFound(f"no release/files found for {name} {version}")
    return dict(verdata), links


def _content(
    request: Request, source: IndexType, relpath: str, new: NewBlobs | None = None
) -> FileRef:
    """The file at ``relpath``, fetched into the blob store first if it is not there (a mirror
    file never downloaded); ``new`` records that blob so a failed push removes it again."""
    ref = source.get_file(relpath)
    if ref is None:
        raise NotFound(f"no such file {relpath}")
    if ref.withheld is not None:  # quarantined or removed upstream: not copied anywhere
        raise Gone(ref.withheld)
    blobs = services.blob_store(request)
    if ref.sha256 and blobs.exists(ref.sha256):
        return ref
    stream = source.open_uncached(ref)
    if stream is None:
        raise UpstreamUnavailable(f"cannot fetch {relpath}")
    try:
        with BlobIngest(blobs, services.serverdir(request).tmpdir) as blob:
            blob.write_from(stream.chunks)
            if ref.size is not None or ref.hashes:
                blob.check(size=ref.size, hashes=dict(ref.hashes))
            digest = new.commit(blob) if new is not None else blob.commit()
    finally:
        stream.close()
    fetched = source.get_file(relpath) or ref
    if fetched.sha256 != digest:
        fetched = replace(fetched, sha256=digest)
    return fetched


def push(request: Request, record: IndexRecord, body: Mapping[str, Any]) -> Response:
    """Dispatch an internal (``targetindex``) or external (``posturl``) push."""
    unknown = sorted(set(body) - KNOWN)
    if unknown:
        raise BadRequest(f"unknown additional options: {', '.join(unknown)}")
    name, version = body.get("name"), body.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        raise BadRequest("push needs 'name' and 'version'")
    if "targetindex" not in body and "posturl" in body and not can(request, "upload", record):
        raise deny(
            identity(request),
            f"pushing to another server needs upload permission on {record.fullname}",
        )
    source = services.indexes(request).type_of(record)
    verdata, links = _release_links(request, source, name, version, body)
    if "targetindex" in body:
        rows = _push_internal(request, source, str(body["targetindex"]), verdata, links)
        return api_reply(request, "actionlog", rows)
    if "posturl" in body:
        rows, ok = _push_external(request, source, body, verdata, links)
        return api_reply(request, "actionlog", rows, status=200 if ok else 502)
    raise BadRequest("push needs 'targetindex' or 'posturl'")


def _push_internal(
    request: Request,
    source: IndexType,
    target_name: str,
    verdata: dict[str, Any],
    links: list[dict[str, Any]],
) -> list[list[Any]]:
    user, index = split_fullname(target_name)
    target_record = services.indexes(request).get(f"{user}/{index}")
    if target_record is None:
        raise NotFound(f"no index {target_name!r}")
    target = stage_of(request, target_record)
    who = identity(request)
    username = who.username if who else None
    if not can(request, "upload", target_record):
        raise Unauthorized(f"user {username!r} cannot upload to {target_name!r}", challenge=False)
    name, version = str(verdata.get("name") or ""), str(verdata.get("version") or "")
    project = check_project(name)
    check_version(version)
    # what an upload would refuse is not stored by a push either (a mirror's files come from
    # its upstream, a stage's may predate these checks)
    for link in links:
        if link["rel"] == RELEASE:
            check_release_filename(str(link["relpath"]).rsplit("/", 1)[-1], name, version)
    metadata = {k: v for k, v in verdata.items() if not k.startswith("+") and k != "yanked"}
    new = NewBlobs(target.env)
    for link in links:  # every file is admitted before any is fetched or stored
        _admit(new, target, link, metadata, who=username, source=source.name)
    refs = [(link, _content(request, source, link["relpath"], new)) for link in links]
    rows: list[list[Any]] = [[200, "register", name, version, "->", target.name]]
    with new.transaction() as tx:
        target.set_metadata(tx, project, version, metadata, display_name=name)
        for link, ref in sorted(refs, key=lambda item: item[0]["rel"] == TOXRESULT):
            rec = _copied_record(source, target, link, ref, username)
            new.add_file(tx, target, project, version, rec, who=username)
            rows.append(_row(link["rel"], rec, name, version, target.name))
    return rows


def _admit(
    new: NewBlobs,
    target: StageIndex,
    link: Mapping[str, Any],
    metadata: Mapping[str, Any],
    *,
    who: str | None,
    source: str,
) -> None:
    hashes = link.get("hashes")
    new.admit(
        target, project=normalize(str(metadata.get("name") or "")),
        version=str(metadata.get("version") or ""),
        filename=str(link["relpath"]).rsplit("/", 1)[-1], rel=str(link["rel"]), action="push",
        username=who, metadata=metadata, size=link.get("size"),
        sha256=hashes.get("sha256") if isinstance(hashes, dict) else None, source=source,
    )


def _copied_record(
    source: IndexType, target: StageIndex, link: Mapping[str, Any], ref: FileRef, who: str | None
) -> dict[str, Any]:
    assert ref.sha256 is not None
    log_entries = filelog.carried(link.get("log", ()), link["rel"])
    log_entries.append(filelog.push(who, source.name, target.name))
    rec: dict[str, Any] = {
        "filename": ref.filename,
        "rel": link["rel"],
        "size": ref.size,
        "upload_time": ref.meta.get("upload_time") or ref.meta.get("last_modified"),
        "last_modified": ref.last_modified,
        "sha256": ref.sha256,
        "hashes": {"sha256": ref.sha256},
        "relpath": hashdir_relpath(target.name, ref.sha256, ref.filename),
        "log": log_entries,
    }
    if isinstance(source, StageIndex):
        original = (source.version_record(ref.project, ref.version or "") or {}).get("files", {})
        src_rec = original.get(ref.filename, {})
        for key in ("requires_python", "core_metadata", "upload_time"):
            if src_rec.get(key):
                rec[key] = src_rec[key]
        if src_rec.get("for_relpath"):
            release = src_rec["for_relpath"].rsplit("/", 1)[-1]
            release_sha = original.get(release, {}).get("sha256", "")
            rec["for_relpath"] = hashdir_relpath(target.name, release_sha, release)
            rec["relpath"] = f"{rec['for_relpath'].rsplit('/', 1)[0]}/{ref.filename}"
    return rec


def _row(rel: str, rec: Mapping[str, Any], name: str, version: str, target: str) -> list[Any]:
    if rel == RELEASE:
        return [200, "store_releasefile", rec["relpath"]]
    if rel == TOXRESULT:
        return [200, "store_toxresult", rec["relpath"]]
    return [200, "store_doczip", name, version, "->", target]


def _push_external(
    request: Request,
    source: IndexType,
    body: Mapping[str, Any],
    verdata: dict[str, Any],
    links: list[dict[str, Any]],
) -> tuple[list[list[Any]], bool]:
    posturl = str(body["posturl"])
    if not posturl.startswith(("http://", "https://")):
        raise BadRequest("posturl must be an http or https URL")
    policy = services.outbound_policy(request)
    # refused before any file is fetched for it; a name that does not resolve is reported like
    # any connection failure below
    with contextlib.suppress(OSError):
        policy.check_url(posturl)
    auth = (str(body.get("username", "")), str(body.get("password", "")))
    metadata = {k: v for k, v in verdata.items() if not k.startswith("+") and k != "yanked"}
    name, version = metadata.get("name", ""), metadata.get("version", "")
    blobs = services.blob_store(request)
    with guarded_session(policy) as session:
        remote = _Remote(session, posturl, auth)
        if body.get("register_project"):
            status = remote.post(
                {":action": "submit", **metadata}, None, ["register", name, version]
            )
            if status not in (200, 201, 410):
                return remote.rows, False
        # release files first, then docs (devpi-server's order; an index may want the release
        # to exist before its documentation)
        for link in sorted(links, key=lambda link: link["rel"] == DOCZIP):
            if link["rel"] == TOXRESULT:
                continue
            ref = _content(request, source, link["relpath"])
            assert ref.sha256 is not None
            with blobs.open(ref.sha256) as f:
                if link["rel"] == DOCZIP:
                    fields = {":action": "doc_upload", "name": name, "version": version}
                    remote.post(fields, (f"{name}.zip", f), ["docfile", name])
                else:
                    remote.post(
                        _file_fields(metadata, ref), (ref.filename, f), ["upload", ref.relpath]
                    )
    rows = remote.rows
    return rows, bool(rows) and rows[-1][0] in (200, 201)


def _file_fields(metadata: Mapping[str, Any], ref: FileRef) -> dict[str, Any]:
    wheel = ref.filename.endswith(".whl")
    return {
        ":action": "file_upload",
        **metadata,
        "protocol_version": "1",
        "sha256_digest": ref.sha256,
        "filetype": "bdist_wheel" if wheel else "sdist",
        "pyversion": "py3" if wheel else "source",
    }


def _failure(status: int, url: str) -> str:
    if 300 <= status < 400:
        return f"{url} answered {status}, a redirect, which a push does not follow"
    return f"{url} answered {status}"


@dataclass
class _Remote:
    """Another server's legacy upload URL, and the actionlog rows of what was sent there."""

    session: requests.Session
    url: str
    auth: tuple[str, str]
    rows: list[list[Any]] = field(default_factory=list)

    def post(self, fields: Mapping[str, Any], file: tuple[str, Any] | None, row: list[Any]) -> int:
        """POST one form; append devpi's actionlog row; return the status (-1: no answer)."""
        data = [
            (k, v)
            for k, value in fields.items()
            for v in (value if isinstance(value, list) else [value])
            if v not in (None, "")
        ]
        files = {"content": file} if file else None
        try:
            response = self.session.post(
                self.url,
                data=data,
                auth=self.auth,
                timeout=TIMEOUT,
                files=files,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            log.warning("push to %s failed: %s", self.url, exc)
            self.rows.append([-1, f"exception on {row[0]}", _reason(exc, self.url)])
            return -1
        with response:
            ok = response.status_code in (200, 201)
        # devpi's rows carry a text for failed file uploads; devpi's was the remote answer,
        # which made this server a proxy that reads any URL for any reader: status and URL only
        text = "" if ok else _failure(response.status_code, self.url)
        self.rows.append(
            [response.status_code, *row, text]
            if row[0] == "upload"
            else [response.status_code, *row]
        )
        return int(response.status_code)


def _reason(exc: requests.RequestException, url: str) -> str:
    # the kind of failure and where: requests' text can carry parts of what the remote sent
    return f"{type(exc).__name__} sending to {url}"
