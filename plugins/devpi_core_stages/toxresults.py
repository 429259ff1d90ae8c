"""Tox results: JSON reports attached to a release file (``devpi test`` uploads them)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from devpi_core.errors import Forbidden
from devpi_core_stages import layout
from devpi_core_stages.stage import TOXRESULT, StageIndex, log_entry
from devpi_core_stages.storing import NewBlobs
from devpi_core_stages.upload import utc_iso

if TYPE_CHECKING:
    from pyramid.request import Request

    from devpi_core.indextypes import FileRef


def forbidden() -> Forbidden:
    """devpi's wording, which devpi-client users know."""
    return Forbidden(
        "No permission to upload tox results. You can use the devpi test "
        "--no-upload option to skip the upload."
    )


def store(request: Request, stage: StageIndex, ref: FileRef, data: Any, who: str | None) -> str:
    """Store ``data`` for release file ``ref``; return the tox result's path."""
    body = json.dumps(data).encode()
    new = NewBlobs(stage.env)
    sha256 = new.put_bytes(body)
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    hashdir = ref.relpath.rsplit("/", 1)[0]
    with new.transaction() as tx:
        record = tx.get(layout.version_key(stage.name, ref.project, ref.version or "")) or {}
        taken = set(record.get("files", {}))
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
            "log": [log_entry("upload", who, stage.name)],
        }
        stage.add_file(tx, ref.project, ref.version or "", rec, overwrite_who=who)
    return f"{hashdir}/{filename}#sha256={sha256}"
