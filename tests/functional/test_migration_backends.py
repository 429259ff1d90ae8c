"""Moving a server between storage backends (issue 12): ``devpi-core export`` from SQLite and
files, ``devpi-core import --config pg-s3.yml`` into PostgreSQL and S3.

The round trip keeps users (their passwords log in), indexes with their configuration,
projects and versions, file bytes (read back from the S3 bucket) and documentation pages.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import webtest

from devpi_core import services
from devpi_core.app import make_app as build_app
from devpi_core.bootstrap import initialise_data, load_plugins
from devpi_core.cli import main
from devpi_core.config import load_raw
from devpi_core.serverdir import create, open_serverdir
from devpi_core.testing.client import Client
from devpi_core.testing.dists import DistSpec, make_doczip, make_sdist, make_wheel
from devpi_core.testing.plugin import server_config, write_config

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SPEC = DistSpec("movepkg", "1.0", summary="moved between backends")
WHEEL, SDIST = make_wheel(SPEC), make_sdist(SPEC)
DOCS = make_doczip({"index.html": "<html><body><h1>Moved docs</h1></body></html>"})


def serve(config: Path, serverdir: Path, *, new: bool = False) -> Iterator[Client]:
    """A WebTest client on ``serverdir`` with ``config`` (initialised first if ``new``)."""
    plugins, settings = load_plugins(load_raw(str(config)))
    settings = settings.with_overrides(serverdir=str(serverdir))
    app = build_app(plugins, settings, create(str(serverdir)) if new
                    else open_serverdir(str(serverdir)))
    try:
        if new:
            initialise_data(services.users(app.registry), services.indexes(app.registry),
                            plugins=plugins, settings=settings, root_password="rootpw",
                            default_indexes=False)
        yield Client(webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1"}))
    finally:
        services.shutdown(app.registry)


def _fill(client: Client) -> None:
    client.create_and_login("alice", "alice-pw")
    client.create_index("alice/base", volatile=False)
    client.create_index("alice/dev", bases=["alice/base"], acl_upload=["alice", "bob"],
                        mirror_whitelist=["movepkg"])
    client.upload("alice/dev", WHEEL, summary=SPEC.summary)
    client.upload("alice/dev", SDIST)
    client.app.post(
        "/alice/dev/",
        params=[(":action", "doc_upload"), ("name", "movepkg"), ("version", "1.0")],
        upload_files=[("content", "movepkg.zip", DOCS)],
        headers=client._headers(json_accept=False),
    )
    client.create_user("bob", "bob-pw", email="b\u00f6b@example.org")


def _snapshot(client: Client) -> dict[str, Any]:
    """What a client sees: users, index configs, project and version JSON, file bytes."""
    version = client.get_json("/alice/dev/movepkg/1.0")["result"]
    files = {
        link["href"].rsplit("/", 1)[-1]: client.app.get(
            link["href"].replace("http://localhost", "")).body
        for link in version["+links"] if link["rel"] == "releasefile"
    }
    for link in version["+links"]:
        link.pop("href", None)
    return {
        "users": sorted(client.get_json("/")["result"]),
        "bob": client.get_json("/bob")["result"],
        "base": client.get_json("/alice/base")["result"],
        "dev": client.get_json("/alice/dev")["result"],
        "projects": client.get_json("/alice/dev")["result"]["projects"],
        "version": version,
        "files": files,
        "docs": client.app.get("/alice/dev/movepkg/1.0/+doc/index.html").body,
    }


def test_export_from_sqlite_and_files_imports_into_postgresql_and_s3(
    tmp_path, postgres_dsn, s3_server, capsys
):
    source_config = write_config(tmp_path / "source.yml", server_config())
    source = tmp_path / "source"
    for client in serve(source_config, source, new=True):
        _fill(client)
        before = _snapshot(client)
    assert before["files"] == {WHEEL.filename: WHEEL.content, SDIST.filename: SDIST.content}
    assert b"Moved docs" in before["docs"]

    dump = tmp_path / "dump"
    assert main(["export", "--serverdir", str(source), "--config", str(source_config),
                 str(dump)]) == 0
    bucket = s3_server.new_bucket()
    target_config = write_config(tmp_path / "pg-s3.yml", server_config({
        "storage": {"metadata": "postgresql", "blobs": "s3"},
        "plugins": {"pgstore": {"dsn": postgres_dsn}, "s3store": s3_server.settings(bucket)},
    }))
    target = tmp_path / "target"
    capsys.readouterr()
    assert main(["import", "--serverdir", str(target), "--config", str(target_config),
                 str(dump)]) == 0
    assert "imported 3 users, 2 indexes, 1 projects, 3 files" in capsys.readouterr().out

    stored = s3_server.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    digests = {hashlib.sha256(WHEEL.content).hexdigest(), hashlib.sha256(SDIST.content).hexdigest()}
    assert all(any(d in obj["Key"] for obj in stored) for d in digests)  # the bytes are in S3
    for client in serve(target_config, target):
        assert _snapshot(client) == before
        client.login("root", "rootpw")
        client.login("alice", "wrong", status=401)
        client.login("alice", "alice-pw")
        client.upload("alice/dev", make_wheel(DistSpec("movepkg", "2.0")))  # still writable
        assert client.get_json("/alice/dev/movepkg/2.0")["result"]["version"] == "2.0"
