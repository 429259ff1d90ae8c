"""Streamed first downloads: clients get a cold file as it arrives, but never its last byte
before size and hashes check out, so a bad upstream file never reaches a client complete."""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

import pytest
import requests

from devpi_core.errors import UpstreamUnavailable
from devpi_core.records import UpstreamStream
from devpi_core.testing.dists import Dist
from devpi_core.testing.memstore import MemoryBlobStore
from devpi_core_mirror.fills import DONE, FAILED, STREAMING, FileJob, Fill, FillEnv

if TYPE_CHECKING:
    from collections.abc import Iterator


class _Counts:
    def add(self, name: str, amount: int = 1) -> None:
        pass


class GatedSource:
    """Reads a file from the fake upstream, and holds the end of the transfer back until
    ``gate`` is set: the fill is then still "streaming" with every byte written."""

    def __init__(self) -> None:
        self.gate = threading.Event()

    def open_file(self, url: str) -> UpstreamStream:
        response = requests.get(url, stream=True, timeout=10)
        response.raise_for_status()

        def chunks() -> Iterator[bytes]:
            yield from response.iter_content(1 << 16)
            assert self.gate.wait(10), "the test never let the transfer end"

        size = int(response.headers["Content-Length"])
        return UpstreamStream(chunks(), size, close=response.close)


def _fill(tmp_path, fake_upstream, *, wrong_hash: bool):
    wheel = Dist("big-1.0-py3-none-any.whl", os.urandom(300_000))  # several chunks
    entry = fake_upstream.add("big", wheel)
    fake_upstream.faults.wrong_hash = wrong_hash
    source, blobs, committed = GatedSource(), MemoryBlobStore(), []
    hashes = {"sha256": wheel.sha256}
    job = FileJob("k", fake_upstream.file_url(entry), wheel.filename, hashes, len(wheel.content))
    env = FillEnv(source, blobs, str(tmp_path), _Counts(), threading.Event())  # type: ignore[arg-type]
    fill = Fill(job, env, committed.append)
    threading.Thread(target=fill.run, daemon=True).start()
    assert fill.wait((STREAMING,), 10) == STREAMING
    return wheel.content, fill, source, blobs, committed


def _read_until_all_but_one(stream, size: int, source: GatedSource) -> bytearray:
    """Read the stream; once all but the last byte are in, let the upstream finish."""
    received = bytearray()
    for chunk in stream.chunks:
        received += chunk
        if len(received) >= size - 1 and not source.gate.is_set():
            assert len(received) == size - 1, "the last byte went out before the hash was checked"
            source.gate.set()
    return received


def test_a_streamed_file_with_the_wrong_hash_never_reaches_a_client_complete(
    tmp_path, fake_upstream
):
    content, fill, source, blobs, committed = _fill(tmp_path, fake_upstream, wrong_hash=True)
    stream = fill.reader(blobs.open, idle_timeout=10)
    with pytest.raises(UpstreamUnavailable, match="bad content"):
        _read_until_all_but_one(stream, len(content), source)
    assert fill.state == FAILED
    assert committed == []  # nothing unverified is stored
    # the failure is announced before the temp file goes: wait for it to go
    deadline = time.monotonic() + 10
    while os.listdir(tmp_path):
        assert time.monotonic() < deadline, "the unverified temp file stayed"
        time.sleep(0.01)


def test_a_streamed_file_gets_its_last_byte_once_verified(tmp_path, fake_upstream):
    content, fill, source, blobs, committed = _fill(tmp_path, fake_upstream, wrong_hash=False)
    stream = fill.reader(blobs.open, idle_timeout=10)
    received = _read_until_all_but_one(stream, len(content), source)
    assert bytes(received) == content
    assert fill.wait((DONE,), 10) == DONE
    assert committed == [fill.sha256]
    assert blobs.open(committed[0]).read() == content
