from __future__ import annotations

import gc
import os

from devpi_core.page_bodies import SPILL_MIN, MemoryBody, SpilledBody, make_body


def test_small_bodies_stay_in_memory(tmp_path):
    body = make_body(b"x" * 100, str(tmp_path))
    assert isinstance(body, MemoryBody)
    assert (body.memory, body.disk, body.size) == (100, 0, 100)
    assert body.reader().read() == b"x" * 100


def test_large_bodies_go_to_an_unlinked_file(tmp_path):
    data = os.urandom(SPILL_MIN + 123)
    body = make_body(data, str(tmp_path))
    assert isinstance(body, SpilledBody)
    assert (body.memory, body.disk, body.size) == (0, len(data), len(data))
    assert list(tmp_path.iterdir()) == []  # nothing visible on disk
    one, two = body.reader(), body.reader()
    assert one.read(10) == data[:10]
    assert two.read() == data  # readers keep their own position
    assert one.read() == data[10:]
    one.seek(0, 2)
    assert one.tell() == len(data)
    one.seek(5)
    assert one.read(5) == data[5:10]
    assert b"".join(iter(body.reader())) == data


def test_without_a_directory_everything_stays_in_memory():
    assert isinstance(make_body(b"x" * (SPILL_MIN + 1), None), MemoryBody)


def test_the_descriptor_closes_when_the_last_reader_is_gone(tmp_path):
    body = SpilledBody(b"y" * 10, str(tmp_path))
    fd = body.fd
    reader = body.reader()
    del body
    gc.collect()
    assert reader.read() == b"y" * 10  # an evicted page keeps serving its response
    os.fstat(fd)
    del reader
    gc.collect()
    try:
        os.fstat(fd)
    except OSError:
        pass
    else:
        raise AssertionError("descriptor still open")
