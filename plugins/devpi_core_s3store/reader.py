"""A seekable, streaming reader over one S3 object: ranged GETs, never the whole object held."""

from __future__ import annotations

import io
import os
from typing import Any


class S3Reader(io.RawIOBase):
    """Reads an object through one streaming GET per contiguous run of reads.

    Sequential reads consume a single response body (one request for a whole download); a seek
    elsewhere drops it and the next read sends ``Range: bytes=<pos>-``. Wrap it in
    :class:`io.BufferedReader` for a ``BinaryIO``.
    """

    def __init__(self, client: Any, bucket: str, key: str, *, body: Any, size: int) -> None:
        super().__init__()
        self._client = client
        self._bucket = bucket
        self._key = key
        self._body: Any = body
        self._body_pos = 0
        self._pos = 0
        self.size = size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self.size:
            return 0
        if self._body is None or self._body_pos != self._pos:
            self._drop_body()
            response = self._client.get_object(
                Bucket=self._bucket, Key=self._key, Range=f"bytes={self._pos}-"
            )
            self._body, self._body_pos = response["Body"], self._pos
        data = self._body.read(min(len(buffer), self.size - self._pos))
        if not data:
            raise OSError(f"s3://{self._bucket}/{self._key} ended at byte {self._pos}")
        count = len(data)
        buffer[:count] = data
        self._pos += count
        self._body_pos += count
        return count

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()  # an unfinished body is not reused: its connection is dropped
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()
