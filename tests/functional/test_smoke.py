from __future__ import annotations

from devpi_core.testing.dists import DistSpec, make_wheel


def test_upload_and_simple_page(client):
    client.create_and_login("alice")
    client.create_index("alice/dev")
    dist = make_wheel(DistSpec("hello", "1.0"))
    client.upload("alice/dev", dist)
    assert client.simple_filenames("alice/dev", "hello") == [dist.filename]
    page = client.simple("alice/dev", "hello")
    assert dist.sha256 in page.text
