"""Core asks each index's type for its rules; a third-party type reuses or replaces them.

Core knows an index and its type, not ``bases``, ``volatile`` or ``acl_upload``: the ``stage``
type answers :meth:`~devpi_core.indextypes.IndexType.resolution_order`, ``contributors``,
``allows`` and ``may_delete`` with devpi's semantics. The types below hold nothing themselves:

- ``opaque`` declares the stage's key names but answers nothing about them (the defaults):
  core neither merges its bases nor honours its ``volatile``;
- ``pinned`` replaces a rule (it may never be deleted);
- ``flat`` reuses the stage's rules by composition through the public API (a stage over the
  same record, built by the ``stage`` spec's factory) but serves its direct bases only.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any

import pytest

from devpi_core import hookimpl, services
from devpi_core.indextypes import FileRef, IndexType
from devpi_core.specs import IndexKey, IndexTypeSpec
from devpi_core.testing.dists import DistSpec, make_wheel

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence

    from devpi_core.indextypes import Contributors, IndexEnv
    from devpi_core.records import IndexRecord, Link

WHEEL = "pkg-1.0-py3-none-any.whl"


class Opaque(IndexType):
    """Holds nothing and, by default, shows nothing of its bases."""

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


class Pinned(Opaque):
    """Replaces the deletion rule: never deleted, whatever its configuration says."""

    def may_delete(self, *, force: bool = False) -> bool:
        return False


class Flat(Opaque):
    """The stage's rules, reused by composition, limited to the direct bases."""

    def __init__(self, env: IndexEnv, record: IndexRecord) -> None:
        super().__init__(env, record)
        self.stage_rules = services.indexes(env.services).types["stage"].factory(env, record)

    def bases(self) -> Sequence[str]:
        return self.stage_rules.bases()

    def resolution_order(
        self, can_read: Callable[[IndexRecord], bool] | None = None
    ) -> Sequence[IndexRecord]:
        direct = {self.name, *self.bases()}
        return [r for r in self.stage_rules.resolution_order(can_read) if r.fullname in direct]

    def contributors(self, order: Sequence[IndexRecord], project: str) -> Contributors:
        return self.stage_rules.contributors(order, project)


def rules_plugin() -> types.ModuleType:
    module = types.ModuleType("rules")
    keys = (
        IndexKey("bases", "bases", default=[]),
        IndexKey("volatile", "bool", default=True),
        IndexKey("mirror_whitelist", "names", default=[]),
        IndexKey("acl_upload", "acl", default=[]),
    )
    specs = [
        IndexTypeSpec("opaque", Opaque, keys),
        IndexTypeSpec("pinned", Pinned, keys),
        IndexTypeSpec("flat", Flat, keys),
    ]
    module.devpi_index_types = hookimpl(lambda: specs)
    return module


@pytest.fixture
def client(make_app):
    client = make_app(modules=(("rules", rules_plugin()),))
    client.login("root", "")
    client.create_and_login("alice")
    client.create_index("alice/base")
    client.upload("alice/base", make_wheel(DistSpec("pkg", "1.0")))
    client.create_index("alice/mid", bases="alice/base")
    return client


def test_core_does_not_merge_the_bases_of_a_type_that_names_none(client):
    client.create_index("alice/opaque", type="opaque", bases="alice/base")
    assert client.simple_filenames("alice/mid", "pkg") == [WHEEL]
    assert client.simple("alice/opaque", "pkg", status=404).status_int == 404
    assert "pkg" not in client.get("/alice/opaque/+simple/", Accept="text/html").text
    assert "pkg" in client.get("/alice/mid/+simple/", Accept="text/html").text


def test_a_stage_based_on_it_does_not_reach_past_it(client):
    client.create_index("alice/opaque", type="opaque", bases="alice/base")
    client.create_index("alice/dev", bases="alice/opaque")
    assert client.simple("alice/dev", "pkg", status=404).status_int == 404
    client.create_index("alice/direct", bases="alice/opaque,alice/base")
    assert client.simple_filenames("alice/direct", "pkg") == [WHEEL]


def test_core_does_not_read_volatile_of_a_type_that_does_not_answer_for_it(client):
    client.create_index("alice/opaque", type="opaque", volatile=False)
    client.request("DELETE", "/alice/opaque", status=201)
    assert client.get_json("/alice/opaque", status=404) is not None


def test_a_type_replaces_the_deletion_rule(client):
    client.create_index("alice/pinned", type="pinned")
    assert client.get_json("/alice/pinned")["result"]["volatile"] is True
    refused = client.request("DELETE", "/alice/pinned", status=403)
    assert "cannot delete" in refused.json["message"]
    refused = client.request("DELETE", "/alice", status=403)
    assert "pinned" in refused.json["message"]


def test_a_type_reuses_the_stage_rules_by_composition(client):
    client.create_index("alice/flat", type="flat", bases="alice/mid")
    client.create_index("alice/flat2", type="flat", bases="alice/base")
    # the stage's order limited to direct bases: mid's own base is left out
    assert client.simple("alice/flat", "pkg", status=404).status_int == 404
    assert client.simple_filenames("alice/flat2", "pkg") == [WHEEL]
    assert client.get_json("/alice/flat2/pkg")["result"]["1.0"]["name"] == "pkg"
    # a stage based on it walks its bases as it names them
    client.create_index("alice/over", bases="alice/flat")
    assert client.simple_filenames("alice/over", "pkg") == [WHEEL]


def test_the_owner_default_of_acl_upload_is_the_stage_type_s(client):
    assert client.get_json("/alice/mid")["result"]["acl_upload"] == ["alice"]
    client.create_index("alice/opaque", type="opaque")
    assert client.get_json("/alice/opaque")["result"]["acl_upload"] == []
