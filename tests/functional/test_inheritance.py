"""Index inheritance: resolution order, shadowing, and ``mirror_whitelist`` (API.md 4.1-4.3).

Mirrors are played by a tiny mirror-typed index type defined here, so the dependency-confusion
rules are tested without any upstream.
"""

from __future__ import annotations

import base64
import types
from typing import TYPE_CHECKING, Any

import pytest
from pyramid.scripting import prepare

from devpi_core import hookimpl, services
from devpi_core.indextypes import FileRef, IndexType
from devpi_core.model.relpaths import hashdir_relpath
from devpi_core.records import Link
from devpi_core.specs import IndexKey, IndexTypeSpec
from devpi_core.testing.dists import DistSpec, make_wheel
from devpi_core.web import contributing_indexes

if TYPE_CHECKING:
    from collections.abc import Hashable, Iterable, Mapping, Sequence

FAKE_SHA = "ab" * 32


class FakeMirror(IndexType):
    """A read-only mirror whose projects are ``{name: [versions]}`` in the index config."""

    @property
    def _projects(self) -> Mapping[str, list[str]]:
        return self.record.config.get("fake_projects") or {}

    def project_names(self) -> Iterable[str]:
        return sorted(self._projects)

    def has_project(self, project: str) -> bool:
        return project in self._projects

    def page_token(self, project: str) -> Hashable | None:
        return tuple(self._projects[project]) if project in self._projects else None

    def links(self, project: str) -> Sequence[Link]:
        return [
            Link(
                f"{project}-{v}.tar.gz",
                hashdir_relpath(self.name, FAKE_SHA, f"{project}-{v}.tar.gz"),
                {"sha256": FAKE_SHA},
                version=v,
            )
            for v in self._projects.get(project, ())
        ]

    def versions(self, project: str) -> Mapping[str, Mapping[str, Any]]:
        return {
            v: {"name": project, "version": v, "+links": []}
            for v in self._projects.get(project, ())
        }

    def get_file(self, relpath: str) -> FileRef | None:
        return None


def fake_mirror_plugin() -> types.ModuleType:
    module = types.ModuleType("fakemirror")
    spec = IndexTypeSpec(
        "fakemirror", FakeMirror, (IndexKey("fake_projects", "json"),), is_mirror=True
    )
    module.devpi_index_types = hookimpl(lambda: [spec])
    return module


@pytest.fixture
def client(make_app):
    client = make_app(modules=(("fakemirror", fake_mirror_plugin()),))
    client.login("root", "")
    client.create_index(
        "root/upstream",
        type="fakemirror",
        fake_projects={"pkg": ["1.0", "99.0"], "onlyup": ["3.0"], "shared": ["5.0"]},
    )
    client.create_and_login("alice")
    return client


def upload(client, index, name, version, **kw):
    wheel = make_wheel(DistSpec(name, version, **kw))
    client.upload(index, wheel)
    return wheel


def names(client, index, project):
    return client.simple_filenames(index, project)


def test_resolution_order_is_breadth_first_with_mirrors_last(client):
    for name in ("c", "b", "a"):
        client.create_index(f"alice/{name}", bases="alice/c" if name == "a" else "")
    client.create_index("alice/dev", bases="root/upstream,alice/a,alice/b")
    for index in ("alice/dev", "alice/a", "alice/b", "alice/c"):
        upload(client, index, "shared", "1." + index[-1].replace("v", "0"))
    client.modify_index("alice/dev", ["mirror_whitelist=shared"])
    page = client.simple("alice/dev", "shared").text
    stages = [line.split(" ", 1)[0] for line in page.splitlines() if "<a " in line]
    assert stages == ["alice/dev", "alice/a", "alice/b", "alice/c", "root/upstream"]


def test_own_file_shadows_the_same_file_of_a_base(client):
    client.create_index("alice/base")
    client.create_index("alice/dev", bases="alice/base")
    base_wheel = upload(client, "alice/base", "pkg", "1.0")
    upload(client, "alice/base", "pkg", "2.0")
    own = make_wheel(DistSpec("pkg", "1.0", summary="mine"))
    client.upload("alice/dev", own)
    files = client.simple("alice/dev", "pkg", json_api=True).json["files"]
    assert [f["filename"] for f in files] == [own.filename, "pkg-2.0-py3-none-any.whl"]
    by_name = {f["filename"]: f for f in files}
    assert by_name[own.filename]["hashes"]["sha256"] == own.sha256 != base_wheel.sha256
    data = client.get_json("/alice/dev/pkg/1.0")["result"]
    assert data["summary"] == "mine"
    assert [s["summary"] for s in data["+shadowing"]] == ["a generated test package"]
    assert set(client.get_json("/alice/dev/pkg")["result"]) == {"1.0", "2.0"}
    assert set(client.get_json("/alice/dev/pkg?ignore_bases")["result"]) == {"1.0"}


def test_dependencies_resolve_through_bases_and_project_list_merges(client):
    client.create_index("alice/base")
    client.create_index("alice/dev", bases="alice/base")
    upload(client, "alice/base", "dep", "1.0")
    upload(client, "alice/dev", "app", "1.0", requires_dist=["dep"])
    assert names(client, "alice/dev", "dep") == ["dep-1.0-py3-none-any.whl"]
    listed = [p["name"] for p in client.simple("alice/dev", json_api=True).json["projects"]]
    assert sorted(listed) == ["app", "dep"]


def test_private_name_hides_mirror_releases(client):
    client.create_index("alice/dev", bases="root/upstream")
    upload(client, "alice/dev", "pkg", "1.0")
    assert names(client, "alice/dev", "pkg") == ["pkg-1.0-py3-none-any.whl"]
    assert names(client, "alice/dev", "onlyup") == ["onlyup-3.0.tar.gz"]
    versions = client.get_json("/alice/dev/pkg")["result"]
    assert set(versions) == {"1.0"}


def test_private_name_in_a_base_hides_mirror_releases(client):
    client.create_index("alice/base")
    client.create_index("alice/dev", bases="alice/base,root/upstream")
    upload(client, "alice/base", "pkg", "1.0")
    assert names(client, "alice/dev", "pkg") == ["pkg-1.0-py3-none-any.whl"]


@pytest.mark.parametrize("whitelist", ["pkg", "*", "PKG"])
def test_whitelisted_names_merge_mirror_releases(client, whitelist):
    client.create_index("alice/dev", bases="root/upstream", mirror_whitelist=whitelist)
    upload(client, "alice/dev", "pkg", "1.0")
    assert names(client, "alice/dev", "pkg") == [
        "pkg-1.0-py3-none-any.whl",
        "pkg-1.0.tar.gz",
        "pkg-99.0.tar.gz",
    ]
    assert set(client.get_json("/alice/dev/pkg")["result"]) == {"1.0", "99.0"}


def test_whitelist_inheritance_intersection_and_union(client):
    client.create_index("alice/base", bases="root/upstream", mirror_whitelist="pkg")
    client.create_index("alice/dev", bases="alice/base")
    upload(client, "alice/base", "pkg", "1.0")
    # intersection (the default): dev's empty list wins, the mirror stays hidden
    assert names(client, "alice/dev", "pkg") == ["pkg-1.0-py3-none-any.whl"]
    client.modify_index("alice/dev", ["mirror_whitelist_inheritance=union"])
    assert "pkg-99.0.tar.gz" in names(client, "alice/dev", "pkg")
    # the base on its own whitelists it
    assert "pkg-99.0.tar.gz" in names(client, "alice/base", "pkg")


def test_mirror_index_takes_no_uploads(client):
    client.login("root", "")
    response = client.upload("root/upstream", make_wheel(DistSpec("x", "1.0")), status=404)
    assert "cannot upload" in response.status
    assert "pypisubmit" not in client.get_json("/root/upstream/+api")["result"]


def test_deleted_base_is_skipped(client):
    client.create_index("alice/base")
    client.create_index("alice/dev", bases="alice/base")
    upload(client, "alice/base", "dep", "1.0")
    upload(client, "alice/dev", "app", "1.0")
    client.request("DELETE", "/alice/base", status=201)
    assert names(client, "alice/dev", "app") == ["app-1.0-py3-none-any.whl"]
    client.simple("alice/dev", "dep", status=404)
    assert client.get_json("/alice/dev")["result"]["bases"] == ["alice/base"]


def test_unreadable_base_is_skipped(client):
    client.create_index("alice/secret", acl_read="alice")
    client.create_index("alice/dev", bases="alice/secret")
    upload(client, "alice/secret", "hidden", "1.0")
    assert names(client, "alice/dev", "hidden") == ["hidden-1.0-py3-none-any.whl"]
    client.logout()
    client.simple("alice/dev", "hidden", status=404)
    client.get("/alice/dev/hidden", status=404)


def test_changes_in_a_base_show_up_at_once(client):
    client.create_index("alice/base")
    client.create_index("alice/dev", bases="alice/base")
    upload(client, "alice/base", "dep", "1.0")
    first = client.simple("alice/dev", "dep")
    upload(client, "alice/base", "dep", "2.0")
    second = client.simple("alice/dev", "dep")
    assert "dep-2.0" in second.text
    assert first.headers["ETag"] != second.headers["ETag"]
    client.modify_index("alice/dev", ["bases="])
    client.simple("alice/dev", "dep", status=404)


def test_contributing_indexes_are_what_the_simple_page_merges(client):
    client.create_index("alice/secret", acl_read="alice")
    client.create_index("alice/dev", bases="alice/secret,root/upstream")
    upload(client, "alice/secret", "pkg", "1.0")
    record = services.indexes(client.app.app.registry).get("alice/dev")

    def contributing(auth):
        env = prepare(registry=client.app.app.registry)
        try:
            if auth is not None:
                token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
                env["request"].headers["X-Devpi-Auth"] = token
            found = contributing_indexes(env["request"], record, "pkg")
        finally:
            env["closer"]()
        return [r.fullname for r in found.stages], list(found.blocked)

    # alice reads the secret base, whose private "pkg" holds the mirror back
    assert contributing(client.auth) == (["alice/secret"], ["root/upstream"])
    assert names(client, "alice/dev", "pkg") == ["pkg-1.0-py3-none-any.whl"]
    # anonymous does not: the mirror's releases are all there is, as on the page
    assert contributing(None) == (["root/upstream"], [])
    client.logout()
    assert names(client, "alice/dev", "pkg") == ["pkg-1.0.tar.gz", "pkg-99.0.tar.gz"]
