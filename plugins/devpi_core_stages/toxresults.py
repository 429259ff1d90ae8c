"""Tox results: JSON reports attached to a release file (``devpi test`` uploads them).

Anyone may upload them by default (``acl_toxresult_upload``), so each result and the number
kept per release file are limited (``plugins.stages``): 20 anonymous 3.8 MB results made one
version page cost seconds and 51 MB of HTML per view.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from devpi_core.errors import Conflict, Forbidden, PayloadTooLarge
from devpi_core_stages import filelog, layout
from devpi_core_stages.stage import TOXRESULT, StageIndex
from devpi_core_stages.storing import NewBlobs
from devpi_core_stages.upload import utc_iso

if TYPE_CHECKING:
    from pyramid.request import Request

    from devpi_core.indextypes import FileRef
    from devpi_core_stages.settings import StagesSettings


def forbidden() -> Forbidden:
    """devpi's wording, which devpi-client users know."""
    return Forbidden(
        "No permission to upload tox results. You can use the devpi test "
        "--no-upload option to skip the upload."
    )


def check_length(length: int | None, limits: StagesSettings) -> None:
    """413 before reading a body that declares more than ``toxresult_max_size``."""
    if length is not None and length > limits.toxresult_max_size:
        raise _too_large(limits)


def _too_large(limits: StagesSettings) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"tox result larger than {limits.toxresult_max_size} bytes "
        "(plugins.stages.toxresult_max_size)"
    )


def store(
    request: Request,
    stage: StageIndex,
    ref: FileRef,
    data: Any,
    who: str | None,
    *,
    limits: StagesSettings,
) -> str:
    """Store ``data`` for release file ``ref``; return the tox result's path.

    413 if it is larger than ``toxresult_max_size``; 409 if the file has
    ``toxresults_per_file`` results already.
    """
    body = json.dumps(data).encode()
    if len(body) > limits.toxresult_max_size:
        raise _too_large(limits)
    new = NewBlobs(stage.env)
    new.admit(
        stage, project=ref.project, version=ref.version or "", filename=f"{ref.filename}.toxresult",
        rel=TOXRESULT, action="toxresult", username=who,
        metadata=stage.version(ref.project, ref.version or "") or {}, size=len(body),
    )
    sha256 = new.put_bytes(body)
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    hashdir = ref.relpath.rsplit("/", 1)[0]
    with new.transaction() as tx:
        record = tx.get(layout.version_key(stage.name, ref.project, ref.version or "")) or {}
        files = record.get("files", {})
        # counted in the write transaction, so concurrent uploads cannot overshoot
        count = sum(1 for rec in files.values() if rec.get("for_relpath") == ref.relpath)
        if count >= limits.toxresults_per_file:
            raise Conflict(
                f"{ref.filename} has {count} tox results, the most kept per file "
                "(plugins.stages.toxresults_per_file)"
            )
        taken = set(files)
        n = 0
        while f"{ref.filename}.toxresult-{stamp}-{n}" in taken:
            n += 1
        filename = f"{ref.filename}.toxresult-{stamp}-{n}"
        now = time.time()
        rec = {
            "filename": filename,
            "rel": TOXRESULT,
            "size": len(body),
            "upload_time": utc_iso(now),
            "last_modified": now,
            "sha256": sha256,
            "hashes": {"sha256": sha256},
            "relpath": f"{hashdir}/{filename}",
            "for_relpath": ref.relpath,
            "log": [filelog.upload(who, stage.name)],
        }
        new.add_file(tx, stage, ref.project, ref.version or "", rec, who=who)
    return f"{hashdir}/{filename}#sha256={sha256}"
