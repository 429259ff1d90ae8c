"""An example devpi-core plugin: no release file without a license in its metadata.

devpi-core asks every plugin's ``devpi_check_upload`` before it stores a file, however the
file arrives (an upload, a push from another index, documentation, a tox result). Raising one of
``devpi_core.errors``' exceptions refuses the file: the client gets its status and message,
nothing is stored. Returning lets the file through.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devpi_core import hookimpl
from devpi_core.errors import BadRequest

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from devpi_core.records import UploadCheck

RELEASE_FILE = "releasefile"  # documentation ("doczip") and tox results ("toxresult") pass


def names_a_license(metadata: Mapping[str, Any]) -> bool:
    """Whether core metadata (devpi's keys) names a license: ``License-Expression``,
    ``License`` or a ``License ::`` classifier."""
    for key in ("license_expression", "license"):
        value = metadata.get(key)
        if isinstance(value, str) and value.strip() and value.strip() != "UNKNOWN":
            return True
    classifiers = metadata.get("classifiers") or ()
    if isinstance(classifiers, str):
        classifiers = [classifiers]
    return any(str(c).startswith("License ::") for c in classifiers)


@hookimpl
def devpi_check_upload(check: UploadCheck) -> None:
    """Refuse a release file whose metadata names no license (400, shown by the client)."""
    if check.rel == RELEASE_FILE and not names_a_license(check.metadata):
        raise BadRequest(
            f"{check.filename}: no license in its metadata; set License-Expression (PEP 639), "
            "License or a 'License ::' classifier"
        )
