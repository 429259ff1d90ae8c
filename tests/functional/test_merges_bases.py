"""``IndexTypeSpec.merges_bases``: core leaves an index type's bases to the type itself.

``opaque`` is an index type with ``bases`` that serves nothing itself (it would filter its
bases, and here filters everything out): core must not merge those bases into its pages,
project list or version data, nor reach them through it from an index based on it. The same
type without the flag gets core's usual merging.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any

import pytest

from devpi_core import hookimpl
from devpi_core.indextypes import FileRef, IndexType
from devpi_core.specs import IndexKey, IndexTypeSpec
from devpi_core.testing.dists import DistSpec, make_wheel

if TYPE_CHECKING:
    from collections.abc import Hashable, Iterable, Mapping, Sequence

    from devpi_core.records import Link


class Opaque(IndexType):
    """Holds nothing and shows nothing of its bases."""

    def project_names(self) -> Iterable[str]:
        return ()

    def has_project(self, project: str) -> bool:
        return False

    def page_token(self, project: str) -> Hashable | None:
        return None

    def links(self, project: str) -> Sequence[Link]:
        return ()

    def versions(self, project: str) -> Mapping[str, Mapping[str, Any]]:
        return {}

    def get_file(self, relpath: str) -> FileRef | None:
        return None


def opaque_plugin() -> types.ModuleType:
    module = types.ModuleType("opaque")
    keys = (IndexKey("bases", "bases", default=[]),)
    specs = [
        IndexTypeSpec("opaque", Opaque, keys, merges_bases=True),
        IndexTypeSpec("transparent", Opaque, keys),
    ]
    module.devpi_index_types = hookimpl(lambda: specs)
    return module


@pytest.fixture
def client(make_app):
    client = make_app(modules=(("opaque", opaque_plugin()),))
    client.login("root", "")
    client.create_and_login("alice")
    client.create_index("alice/base")
    client.upload("alice/base", make_wheel(DistSpec("pkg", "1.0")))
    return client


def test_core_does_not_merge_the_bases_of_a_type_that_merges_them_itself(client):
    client.create_index("alice/opaque", type="opaque", bases="alice/base")
    client.create_index("alice/transparent", type="transparent", bases="alice/base")
    assert client.simple_filenames("alice/transparent", "pkg") == ["pkg-1.0-py3-none-any.whl"]
    assert client.simple("alice/opaque", "pkg", status=404).status_int == 404
    listing = client.get("/alice/opaque/+simple/", Accept="text/html")
    assert "pkg" not in listing.text
    assert "pkg" in client.get("/alice/transparent/+simple/", Accept="text/html").text


def test_an_index_based_on_it_does_not_reach_past_it(client):
    client.create_index("alice/opaque", type="opaque", bases="alice/base")
    client.create_index("alice/dev", bases="alice/opaque")
    assert client.simple("alice/dev", "pkg", status=404).status_int == 404
    client.create_index("alice/direct", bases="alice/opaque,alice/base")
    assert client.simple_filenames("alice/direct", "pkg") == ["pkg-1.0-py3-none-any.whl"]
