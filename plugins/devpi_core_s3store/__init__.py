"""File contents in an S3-compatible object store: ``storage: {blobs: s3}``.

Needs the ``s3`` extra (``pip install 'devpi-core[s3]'``, which brings boto3); the client
library is imported only when the backend is chosen, so the plugin loads without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devpi_core import hookimpl
from devpi_core.errors import StartupError
from devpi_core.specs import ConfigSection, StorageBackend, build
from devpi_core_s3store.settings import SECTION, S3Settings

if TYPE_CHECKING:
    from collections.abc import Mapping

    from devpi_core.interfaces import BlobStore


@hookimpl
def devpi_config_sections() -> list[ConfigSection]:
    """The ``plugins.s3store`` section."""
    return [ConfigSection.declare(SECTION, S3Settings)]


def _s3(_serverdir: str, section: Mapping[str, Any]) -> BlobStore:
    try:
        from devpi_core_s3store.blob_store import S3BlobStore  # noqa: PLC0415 - boto3 is an extra
    except ImportError as exc:
        raise StartupError(
            f"storage.blobs: s3 needs boto3 ({exc}); install devpi-core[s3]"
        ) from None
    return S3BlobStore(build(S3Settings, section))


@hookimpl
def devpi_blob_backends() -> list[StorageBackend]:
    """Content-addressed objects in an S3 bucket."""
    return [StorageBackend("s3", _s3, "objects in an S3-compatible bucket", SECTION)]
