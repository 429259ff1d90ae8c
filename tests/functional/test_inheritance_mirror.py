"""Stages over the real mirror plugin and a fake upstream: dependency-confusion protection.

A name that exists on a private stage hides the upstream's releases of that name and is never
even looked up upstream, unless ``mirror_whitelist`` allows it (API.md 4.3).
"""

from __future__ import annotations

import pytest

from devpi_core.testing.dists import DistSpec, make_wheel


@pytest.fixture
def setup(make_app, fake_upstream):
    fake_upstream.add("private-name", make_wheel(DistSpec("private-name", "99.0")))
    fake_upstream.add("public-dep", make_wheel(DistSpec("public-dep", "2.0")))
    client = make_app()
    client.login("root", "")
    client.create_index("root/up", type="mirror", mirror_url=fake_upstream.url)
    client.create_and_login("alice")
    client.create_index("alice/dev", bases="root/up")
    client.upload("alice/dev", make_wheel(DistSpec("private-name", "1.0")))
    fake_upstream.clear()
    return client, fake_upstream


def test_private_name_is_never_looked_up_upstream(setup):
    client, upstream = setup
    assert client.simple_filenames("alice/dev", "private-name") == [
        "private_name-1.0-py3-none-any.whl"
    ]
    assert set(client.get_json("/alice/dev/private-name")["result"]) == {"1.0"}
    assert upstream.count("private-name") == 0


def test_public_names_come_through_the_mirror(setup):
    client, upstream = setup
    assert client.simple_filenames("alice/dev", "public-dep") == ["public_dep-2.0-py3-none-any.whl"]
    assert upstream.count("public-dep") >= 1


def test_whitelisted_private_name_merges_upstream_releases(setup):
    client, upstream = setup
    client.modify_index("alice/dev", ["mirror_whitelist=private-name"])
    assert client.simple_filenames("alice/dev", "private-name") == [
        "private_name-1.0-py3-none-any.whl",
        "private_name-99.0-py3-none-any.whl",
    ]
    assert upstream.count("private-name") >= 1


def test_mirror_page_itself_is_unaffected(setup):
    client, _upstream = setup
    assert client.simple_filenames("root/up", "private-name") == [
        "private_name-99.0-py3-none-any.whl"
    ]
