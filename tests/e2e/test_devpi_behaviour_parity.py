"""Scenarios a devpi user runs, against devpi-core and devpi-server side by side: same outcome.

Where ``test_devpi_client_parity`` compares the shape of every reply of one long session, this
module compares what a few scenarios leave behind: a user's own mirror index, upstream pages
without links, link hashes that name ``+f`` paths, a file missing upstream, documentation
uploaded before any release, and the file log after a push over a file of a volatile index.
Both servers read one fake upstream on 127.0.0.1. Server URLs and user names differ between
the two and are replaced by placeholders before comparing; log times are dropped.

devpi-server comes from the venv ``make test`` builds (``benchmarks/harness.py``); without it
the module is skipped, and fails under ``CI=true``.
"""

from __future__ import annotations

import io
import json
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from peer import FAST_ARGON2, peer_harness

from devpi_core.testing.devpiclient import DevpiCLI, ServerAPI, running_server, setup_user
from devpi_core.testing.dists import DistSpec, make_doczip, make_sdist
from devpi_core.testing.upstream import FakeUpstream

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SHORT_HASH_LINK = "/files/00000000/pkg-1%212017.4%2Bdevpi.zip#sha256=1234"
MD5_LINK = "/files/00000000/md5pkg-1.0.tar.gz#md5=" + "c" * 32
GONE_LINK = "/files/deadbeef/gone-1.0.tar.gz#sha256=" + "a" * 64


@dataclass
class Side:
    """One server under comparison."""

    name: str
    url: str


@pytest.fixture(scope="module")
def upstream():
    with FakeUpstream(json_pages=False) as fake:
        fake.add_link("pkg", SHORT_HASH_LINK)
        fake.add_link("md5pkg", MD5_LINK)
        fake.add_link("gone", GONE_LINK)
        fake.add_page("empty", b"")
        fake.add_page("nolinks", b"<!DOCTYPE html><title>Links for nolinks</title>")
        yield fake


@pytest.fixture(scope="module")
def sides(tmp_path_factory, upstream):
    """devpi-server and devpi-core, started in parallel; devpi-core's default upstream is the
    fake one (devpi-server's is the public index, which no test reaches)."""
    harness = peer_harness()
    work = tmp_path_factory.mktemp("behaviour")
    config = {"plugins": {"mirror": {"init_root_pypi": False, "default_url": upstream.url}}}
    with ThreadPoolExecutor(1) as pool:
        starting = pool.submit(harness.start_devpi_server, work, extra=FAST_ARGON2)
        try:
            with running_server(work / "core", config) as core:
                peer = starting.result()
                yield [Side("devpi-server", peer.url), Side("devpi-core", core.url.rstrip("/"))]
        finally:
            starting.result().stop()


def _both(sides: list[Side], tmp_path: Path, scenario: Any) -> dict[str, Any]:
    """Run ``scenario(devpi, user)`` for each server at once; results with placeholders."""

    def run(side: Side) -> Any:
        devpi = DevpiCLI.create(tmp_path / side.name)
        user = setup_user(devpi, side.url)
        text = json.dumps(scenario(devpi, user))
        return json.loads(text.replace(side.url, "URL").replace(user.name, "USER"))

    with ThreadPoolExecutor(len(sides)) as pool:
        jobs = {side.name: pool.submit(run, side) for side in sides}
        return {name: job.result() for name, job in jobs.items()}


def _without_when(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_when(v) for k, v in value.items() if k != "when"}
    if isinstance(value, list):
        return [_without_when(v) for v in value]
    return value


def test_a_users_mirror_without_mirror_url(sides, tmp_path, upstream):
    def scenario(devpi, user):
        created = devpi("index", "-c", "mirror", "type=mirror", code=None)
        return {"exit": created.returncode, "listed": "type=mirror" in created.out}

    results = _both(sides, tmp_path, scenario)
    assert results["devpi-core"] == results["devpi-server"] == {"exit": 0, "listed": True}
    # devpi-server stores no upstream (and answers 500 for the index later); devpi-core names
    # its default one
    api = ServerAPI(sides[1].url)
    try:
        found = [
            config
            for user in api.result("/").values()
            for config in user["indexes"].values()
            if config["type"] == "mirror"
        ]
    finally:
        api.close()
    assert found
    assert {config["mirror_url"] for config in found} == {upstream.url}


def test_mirror_pages_links_and_missing_files(sides, tmp_path, upstream):
    def scenario(devpi, user):
        api = user.api()
        try:
            created = api.request(
                "PUT",
                f"{user.name}/m",
                json={"type": "mirror", "mirror_url": upstream.url, "mirror_cache_expiry": 0},
            )
            assert created.status_code == 200, created.text
            out: dict[str, Any] = {}
            for project in ("empty", "nolinks", "pkg", "md5pkg"):
                response = api.get(f"{user.name}/m/{project}")
                body = response.json()
                out[project] = [response.status_code, body.get("result", body.get("message"))]
            gone = api.result(f"{user.name}/m/gone")["1.0"]["+links"][0]["href"]
            missing = api.get(gone, headers={"Accept": "*/*"})
            out["gone"] = [missing.status_code, missing.json()["message"]]
            return out
        finally:
            api.close()

    results = _both(sides, tmp_path, scenario)
    theirs, ours = results["devpi-server"], results["devpi-core"]
    assert theirs["empty"] == theirs["nolinks"] == [200, {}]
    assert ours == theirs
    [link] = ours["pkg"][1]["1!2017.4+devpi"]["+links"]
    assert link["href"] == "URL/USER/m/+f/123/4/pkg-1!2017.4+devpi.zip"
    gone_url = upstream.root + GONE_LINK.partition("#")[0]
    assert ours["gone"] == [404, f"error 404 getting {gone_url}"]


def _docs_tgz() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        page = b"<html><body><h1>tgz docs</h1></body></html>"
        info = tarfile.TarInfo("index.html")
        info.size = len(page)
        tar.addfile(info, io.BytesIO(page))
    return buffer.getvalue()


def test_docs_without_a_release(sides, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("foo-1.0.doc.zip", "baz-2.0.docs.zip", "bar.doc.zip"):
        (docs / name).write_bytes(make_doczip())
    (docs / "qux-3.0.doc.tar.gz").write_bytes(_docs_tgz())

    def scenario(devpi, user):
        out: dict[str, Any] = {}
        for name in ("foo-1.0.doc.zip", "baz-2.0.docs.zip", "qux-3.0.doc.tar.gz", "bar.doc.zip"):
            result = devpi("upload", "--only-docs", str(docs / name), code=None)
            lines = [line for line in result.out.splitlines() if not line.startswith("using")]
            out[name] = [result.returncode, lines]
        api = user.api()
        try:
            for project, version in (("foo", "1.0"), ("baz", "2.0"), ("qux", "3.0")):
                verdata = api.result(f"{user.fullindex}/{project}/{version}")
                links = [link["rel"] for link in verdata.pop("+links")]
                out[project] = [sorted(verdata), links]
            doc = api.get(f"{user.fullindex}/qux/3.0/+doc/index.html", headers={"Accept": "*/*"})
            out["served"] = b"tgz docs" in doc.content  # devpi-server serves docs with devpi-web
        finally:
            api.close()
        return out

    results = _both(sides, tmp_path, scenario)
    theirs, ours = results["devpi-server"], results["devpi-core"]
    assert theirs["bar.doc.zip"][0] == 1
    assert ours.pop("served") is True
    theirs.pop("served")
    assert ours == theirs
    # devpi-client repackages a tar.gz as a zip before it uploads
    assert "repackaged qux-3.0.doc.tar.gz to qux-3.0.doc.zip" in ours["qux-3.0.doc.tar.gz"][1]


def test_push_over_a_file_of_a_volatile_index(sides, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    older = make_sdist(DistSpec("hello", "1.0", summary="older")).write(tmp_path / "a")
    newer = make_sdist(DistSpec("hello", "1.0", summary="newer")).write(tmp_path / "b")

    def scenario(devpi, user):
        devpi("index", "-c", "prod")
        devpi("upload", "--index", f"{user.name}/prod", str(older))
        devpi("upload", str(newer))
        devpi("push", "hello==1.0", f"{user.name}/prod")
        devpi("upload", str(newer))  # the same content again
        api = user.api()
        try:
            return {
                index: [
                    [link["href"], link["log"]]
                    for link in api.result(f"{user.name}/{index}/hello/1.0")["+links"]
                ]
                for index in ("prod", user.index)
            }
        finally:
            api.close()

    results = _both(sides, tmp_path, scenario)
    theirs, ours = (_without_when(results[name]) for name in ("devpi-server", "devpi-core"))
    [[_href, log]] = theirs["prod"]
    assert [entry["what"] for entry in log] == ["overwrite", "upload", "push"]
    assert ours == theirs
