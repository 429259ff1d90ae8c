"""Core runs on the in-memory storage with the filesystem store disabled.

This proves core depends on the storage contracts only, and that a bundled plugin is replaced
by disabling it and registering another that provides the same hooks.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from urllib.parse import urljoin

from devpi_core import services
from devpi_core.testing import memstore
from devpi_core.testing.dists import DistSpec, make_sdist, make_wheel

MEMORY = {
    "storage": {"metadata": "memory", "blobs": "memory"},
    "plugins": {"disabled": ["fsstore"]},
}


def test_users_indexes_uploads_and_pages_without_fsstore(make_app):
    client = make_app(MEMORY, modules=(("memstore", memstore),))
    registry = client.app.app.registry
    assert "fsstore" not in services.plugins(registry).names()
    assert isinstance(services.metadata_store(registry), memstore.MemoryStore)
    assert isinstance(services.blob_store(registry), memstore.MemoryBlobStore)

    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.create_index("alice/child", bases=["alice/dev"])
    wheel, sdist = make_wheel(DistSpec("hello", "1.0")), make_sdist(DistSpec("hello", "1.0"))
    client.upload("alice/dev", wheel)
    client.upload("alice/dev", sdist)

    assert sorted(client.simple_filenames("alice/child", "hello")) == sorted(
        [wheel.filename, sdist.filename]
    )
    page = client.simple("alice/child", "hello")
    assert f"#sha256={wheel.sha256}" in page.text
    links = client.simple("alice/dev", "hello", json_api=True).json["files"]
    url = next(f["url"] for f in links if f["filename"] == wheel.filename)
    content = client.app.get(urljoin("/alice/dev/+simple/hello/", url)).body
    assert hashlib.sha256(content).hexdigest() == wheel.sha256
    assert client.get_json("/alice/dev")["result"]["projects"] == ["hello"]
    assert set(client.get_json("/")["result"]) == {"root", "alice"}

    serverdir = services.settings(registry).server.serverdir
    assert not os.path.exists(os.path.join(serverdir, "metadata.sqlite"))
    assert not os.path.exists(os.path.join(serverdir, "+blobs"))


SCRIPT = textwrap.dedent("""
    import sys, tempfile, webtest
    from devpi_core.app import make_app
    from devpi_core.bootstrap import load_plugins
    from devpi_core.config import load_raw
    from devpi_core.serverdir import create
    from devpi_core.testing import memstore
    from devpi_core.testing.client import Client
    from devpi_core.testing.dists import DistSpec, make_wheel
    from devpi_core.testing.plugin import server_config, write_config
    from pathlib import Path

    base = Path(tempfile.mkdtemp())
    config = server_config({
        "storage": {"metadata": "memory", "blobs": "memory"},
        "plugins": {"disabled": ["fsstore"]},
    })
    plugins, settings = load_plugins(load_raw(str(write_config(base / "c.yml", config))),
                                     modules=[("memstore", memstore)])
    settings = settings.with_overrides(serverdir=str(base / "sd"))
    serverdir = create(settings.server.serverdir)
    app = make_app(plugins, settings, serverdir)
    client = Client(webtest.TestApp(app))
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.upload("alice/dev", make_wheel(DistSpec("hello", "1.0")))
    assert client.simple_filenames("alice/dev", "hello") == ["hello-1.0-py3-none-any.whl"]
    loaded = sorted(name for name in sys.modules if name.startswith("devpi_core_"))
    print(",".join(loaded))
""")


def test_the_filesystem_store_is_never_imported_when_disabled(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.strip().split(",")
    assert "devpi_core_fsstore" not in loaded
    assert "devpi_core_stages" in loaded
