"""File contents in an S3 bucket, addressed by sha256: ``<prefix>sha256/ab/cd/<sha256>``.

boto3 was chosen over obstore by ``benchmarks/s3_bench.py`` (see docs/s3.rst): obstore was
faster per request, but its uploads held concurrency x part size in memory (124 MB peak RSS
for a 100 MB put against 70 MB), and boto3 signs URLs with response headers and copies an
object onto itself (the put-time refresh garbage collection needs) in one documented call.
"""

from __future__ import annotations

import io
import os
import re
import time
from typing import TYPE_CHECKING, Any, BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from devpi_core.errors import StartupError
from devpi_core.interfaces import BlobStat, BlobStore
from devpi_core_s3store.reader import S3Reader
from devpi_core_s3store.settings import S3Settings, part_size_for

if TYPE_CHECKING:
    from collections.abc import Iterator

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MISSING = {"404", "NoSuchKey", "NotFound"}
# a create-only PUT of a key that exists (or is being written: ConditionalRequestConflict)
_EXISTS = {"412", "PreconditionFailed", "409", "ConditionalRequestConflict"}
# blobs never change: caches may keep them (a presigned GET returns these stored headers)
STORED_HEADERS = {
    "ContentType": "application/octet-stream",
    "CacheControl": "public, max-age=31536000, immutable",
}
# CopyObject copies at most 5 GB; a bigger blob is refreshed by uploading it again
MAX_COPY = 5 * 1024**3
READ_BUFFER = 256 * 1024
# waitress threads and mirror fills share one client
POOL_CONNECTIONS = 32


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code"))


def _missing(exc: ClientError) -> bool:
    return _code(exc) in _MISSING


def make_client(settings: S3Settings) -> Any:
    """A thread-safe boto3 S3 client for ``settings``."""
    config = Config(
        s3={"addressing_style": settings.addressing_style},
        signature_version="s3v4",  # presigned URLs too (boto3 still presigns SigV2 otherwise)
        request_checksum_calculation=settings.checksums,
        response_checksum_validation=settings.checksums,
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
        max_pool_connections=POOL_CONNECTIONS,
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
        verify=settings.ca_bundle,
        config=config,
    )


class S3BlobStore(BlobStore):
    """Blobs as S3 objects; the last put time is the object's ``LastModified``.

    A collecting :meth:`delete` reads ``LastModified`` and deletes in two requests, so a put of
    the same content landing between them can be lost: the metadata store's blob states close
    that window (a blob being deleted is not referenced again until it is put anew).
    """

    def __init__(self, settings: S3Settings, client: Any | None = None) -> None:
        if not settings.bucket:
            raise StartupError("plugins.s3store.bucket must name a bucket for storage.blobs: s3")
        self.settings = settings
        self.bucket = settings.bucket
        self.client = client if client is not None else make_client(settings)

    def _key(self, sha256: str) -> str:
        if not _HEX64.match(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return f"{self.settings.prefix}sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return head

    def put_file(self, path: str, sha256: str) -> None:
        key = self._key(sha256)
        if os.path.getsize(path) < self.settings.multipart_threshold:
            self._put_small(path, key)
        elif not self._refresh(key):
            self._upload(path, key)
        os.unlink(path)

    def _put_small(self, path: str, key: str) -> None:
        # One request for new content: a PUT that only creates (If-None-Match: *). Content
        # already there answers 412 and only gets its put time renewed; content deleted in
        # between is put unconditionally.
        if not self._put_object(path, key, create_only=True) and not self._refresh(key):
            self._put_object(path, key, create_only=False)

    def _put_object(self, path: str, key: str, *, create_only: bool) -> bool:
        """PUT the file (the body read as it is sent); False if ``create_only`` and it exists."""
        condition = {"IfNoneMatch": "*"} if create_only else {}
        with open(path, "rb") as f:
            try:
                self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=f, **STORED_HEADERS, **condition
                )
            except ClientError as exc:
                if create_only and _code(exc) in _EXISTS:
                    return False
                raise
        return True

    def _upload(self, path: str, key: str) -> None:
        size = os.path.getsize(path)
        transfer = TransferConfig(
            multipart_threshold=self.settings.multipart_threshold,
            multipart_chunksize=part_size_for(self.settings, size),
            max_concurrency=self.settings.max_concurrency,
            use_threads=self.settings.max_concurrency > 1,
        )
        # streams the file in parts: memory is part size x concurrency, whatever the size;
        # a multipart upload is invisible until completed, so the blob appears atomically
        self.client.upload_file(
            path, self.bucket, key, ExtraArgs=dict(STORED_HEADERS), Config=transfer
        )

    def _refresh(self, key: str) -> bool:
        """Renew the put time of an existing object; False if there is none (or it is too big
        to copy in one request, so the caller uploads it again)."""
        head = self._head(key)
        if head is None or head["ContentLength"] > MAX_COPY:
            return False
        try:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": key},
                MetadataDirective="REPLACE",
                Metadata={"put-at": f"{time.time():.3f}"},
                **STORED_HEADERS,
            )
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True

    def exists(self, sha256: str) -> bool:
        return self._head(self._key(sha256)) is not None

    def size(self, sha256: str) -> int | None:
        found = self.stat(sha256)
        return None if found is None else found.size

    def stat(self, sha256: str) -> BlobStat | None:
        head = self._head(self._key(sha256))
        if head is None:
            return None
        return BlobStat(int(head["ContentLength"]), head["LastModified"].timestamp())

    def open(self, sha256: str) -> BinaryIO:
        key = self._key(sha256)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(sha256) from None
            raise
        raw = S3Reader(
            self.client, self.bucket, key, body=response["Body"], size=response["ContentLength"]
        )
        return io.BufferedReader(raw, READ_BUFFER)

    def url(self, sha256: str, *, filename: str, content_type: str) -> str | None:
        if self.settings.serve != "redirect":
            return None
        quoted = filename.replace("\\", "").replace('"', "")
        params = {
            "Bucket": self.bucket,
            "Key": self._key(sha256),
            "ResponseContentType": content_type,
            "ResponseContentDisposition": f'attachment; filename="{quoted}"',
        }
        url: str = self.client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=self.settings.presign_expiry
        )
        return url

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise OSError(f"S3 bucket {self.bucket!r} is not reachable: {exc}") from None

    def delete(self, sha256: str, *, older_than: float | None = None) -> bool:
        found = self.stat(sha256)
        if found is None or (older_than is not None and found.mtime >= older_than):
            return False
        self.client.delete_object(Bucket=self.bucket, Key=self._key(sha256))
        return True

    def iter_blobs(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.settings.prefix}sha256/"
        )
        for page in pages:
            for item in page.get("Contents", ()):
                name = item["Key"].rsplit("/", 1)[-1]
                if _HEX64.match(name):
                    yield name
