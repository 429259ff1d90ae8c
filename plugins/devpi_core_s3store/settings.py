"""The ``plugins.s3store`` settings: where the bucket is, how to reach it, how files are served."""

from __future__ import annotations

from dataclasses import dataclass

from devpi_core.specs import setting, size_setting

SECTION = "s3store"
_OPTIONAL_STRING = {"type": ["string", "null"]}
# S3 refuses multipart parts under 5 MiB (but the last) and allows at most 10,000 of them
MIN_PART_SIZE = 5 << 20
MAX_PARTS = 10_000


@dataclass(frozen=True)
class S3Settings:
    """The ``plugins.s3store`` section (used with ``storage: {blobs: s3}``)."""

    bucket: str = setting("", "bucket holding the files (must exist)", {"type": "string"})
    prefix: str = setting(
        "", "key prefix inside the bucket, e.g. devpi/ (blobs are <prefix>sha256/ab/cd/<hex>)",
        {"type": "string"},
    )
    endpoint_url: str | None = setting(
        None, "S3 API URL of an S3-compatible store (Ceph, R2, Garage...); null for AWS",
        _OPTIONAL_STRING,
    )
    region: str | None = setting(None, "region name; null: from the environment", _OPTIONAL_STRING)
    access_key_id: str | None = setting(
        None,
        "access key; null: the environment or instance role (write {env: NAME} for a secret)",
        _OPTIONAL_STRING,
    )
    secret_access_key: str | None = setting(
        None, "secret key; null: the environment or instance role", _OPTIONAL_STRING
    )
    addressing_style: str = setting(
        "auto",
        "bucket in the host name (virtual) or in the path (path: most S3-compatible stores)",
        {"enum": ["auto", "path", "virtual"]},
    )
    checksums: str = setting(
        "when_required",
        "request_checksum_calculation and response_checksum_validation of boto3: when_required "
        "works with S3-compatible stores that reject the newer default checksums",
        {"enum": ["when_required", "when_supported"]},
    )
    ca_bundle: str | None = setting(
        None, "CA bundle file to verify the endpoint's certificate; null: the system's",
        _OPTIONAL_STRING,
    )
    part_size: int = size_setting(
        "16M", "multipart part size (memory per upload is part_size x max_concurrency)"
    )
    multipart_threshold: int = size_setting("64M", "files from this size are uploaded in parts")
    max_concurrency: int = setting(
        2, "parts of one upload sent at once", {"type": "integer", "minimum": 1, "maximum": 16}
    )
    serve: str = setting(
        "proxy",
        "proxy: this server streams files from S3 (with Range); redirect: clients get a 302 "
        "to a short-lived presigned URL (the store must be reachable by them)",
        {"enum": ["proxy", "redirect"]},
    )
    presign_expiry: int = setting(
        300, "seconds a presigned redirect URL stays valid",
        {"type": "integer", "minimum": 1, "maximum": 604800},
    )


def part_size_for(settings: S3Settings, size: int) -> int:
    """The part size for a file of ``size`` bytes: the setting, grown to stay under 10,000 parts."""
    needed = -(-size // MAX_PARTS)
    return max(settings.part_size, MIN_PART_SIZE, needed)
