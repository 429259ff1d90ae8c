"""A small but realistic devpi-server, populated as its users would, then exported.

Built once per test run (a file lock lets the xdist workers share it): users (root with a
password, one with a non-ASCII email), a chain of bases with whitelists and ACLs, a mirror
index, an sdist and a wheel uploaded by twine, a wheel by ``devpi upload``, documentation,
a tox result, a push between indexes, a deleted project, a version with only docs and one
registered without files. What devpi-server answers about all of it is recorded as JSON
(``state.json``) beside the dump, to compare other servers with.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests
from filelock import FileLock
from peer import FAST_ARGON2, peer_harness

from devpi_core.testing.devpiclient import DevpiCLI
from devpi_core.testing.dists import DistSpec, make_doczip, make_sdist, make_wheel
from devpi_core.testing.plugin import clean_env

if TYPE_CHECKING:
    from pathlib import Path

PASSWORDS = {"root": "root-pw-123", "alice": "alice-pw-123", "bob": "bob-pw-123"}
EMAIL = "\u00e5lice@ex\u00e4mple.org"
INDEXES = ("alice/base", "alice/dev", "bob/stage", "root/mirror")
PROJECTS = {
    "alice/base": ("base-lib",),
    "alice/dev": ("hello-pkg", "empty-pkg"),
    "bob/stage": ("hello-pkg", "bob-tool"),
}
USER_KEYS = ("username", "email", "created", "title", "description", "custom_data")
DOC_HTML = "<html><body><h1>hello-pkg docs</h1></body></html>"


@dataclass(frozen=True)
class Scenario:
    """The dump directory and devpi-server's answers (``state``)."""

    dump: Path
    state: dict[str, Any]


def _session(user: str, url: str) -> requests.Session:
    """A session logged in with a token: every request with the password would cost an
    argon2 check at devpi-server's default cost (a third of a second here)."""
    session = requests.Session()
    session.trust_env = False
    session.headers["Accept"] = "application/json"
    login = _ok(session.post(f"{url}/+login", json={"user": user, "password": PASSWORDS[user]}))
    token = login.json()["result"]["password"]
    session.headers["X-Devpi-Auth"] = base64.b64encode(f"{user}:{token}".encode()).decode()
    return session


def _ok(response: requests.Response) -> requests.Response:
    assert response.status_code < 300, f"{response.request.method} {response.url}: " \
        f"{response.status_code} {response.text}"
    return response


def _upload(session: requests.Session, url: str, spec: DistSpec, *, action: str = "file_upload",
            content: tuple[str, bytes] | None = None) -> None:
    data = {":action": action, "name": spec.name, "version": spec.version,
            "summary": spec.summary}
    files = {"content": content} if content else None
    _ok(session.post(url, data=data, files=files))


def populate(url: str, work: Path) -> requests.Session:
    """Users, indexes, uploads, docs, tox results, a push and a deletion on ``url``; returns
    root's session."""
    root = requests.Session()
    root.trust_env = False
    root.headers["Accept"] = "application/json"
    root.auth = ("root", "")
    _ok(root.patch(f"{url}/root", json={"password": PASSWORDS["root"]}))
    root = _session("root", url)
    _ok(root.put(f"{url}/alice", json={"password": PASSWORDS["alice"], "email": EMAIL,
                                       "title": "Alice", "custom_data": {"team": "core"}}))
    _ok(root.put(f"{url}/bob", json={"password": PASSWORDS["bob"], "email": "bob@example.org"}))
    _ok(root.put(f"{url}/root/mirror", json={"type": "mirror",
                                             "mirror_url": "http://127.0.0.1:9/simple/",
                                             "mirror_cache_expiry": 600}))
    alice, bob = _session("alice", url), _session("bob", url)
    _ok(alice.put(f"{url}/alice/base", json={"volatile": False, "acl_upload": ["alice", "bob"],
                                             "title": "Base"}))
    _ok(alice.put(f"{url}/alice/dev", json={"bases": ["alice/base"],
                                            "mirror_whitelist": ["hello-pkg"],
                                            "acl_toxresult_upload": ["alice"]}))
    _ok(bob.put(f"{url}/bob/stage", json={"bases": ["alice/dev", "root/mirror"],
                                          "custom_data": "nightly"}))
    base = DistSpec("base-lib", "0.5", requires_python=">=3.8")
    _upload(bob, f"{url}/alice/base/", base, content=(make_wheel(base).filename,
                                                      make_wheel(base).content))
    hello = DistSpec("hello-pkg", "1.0", requires_python=">=3.8")
    dists = [make_sdist(hello), make_wheel(hello)]
    for dist in dists:
        dist.write(work)
    twine = [sys.executable, "-m", "twine", "upload", "--non-interactive",
             "--repository-url", f"{url}/alice/dev/", "-u", "alice", "-p", PASSWORDS["alice"],
             *(str(work / d.filename) for d in dists)]
    subprocess.run(twine, check=True, capture_output=True, env=clean_env(), timeout=120)
    hello2 = DistSpec("hello-pkg", "2.0")
    _upload(alice, f"{url}/alice/dev/", hello2, action="doc_upload",
            content=("hello-pkg-2.0.doc.zip", make_doczip({"index.html": DOC_HTML})))
    _upload(alice, f"{url}/alice/dev/", hello, action="doc_upload",
            content=("hello-pkg-1.0.doc.zip", make_doczip({"index.html": DOC_HTML})))
    _upload(alice, f"{url}/alice/dev/", DistSpec("empty-pkg", "0.1"), action="submit")
    gone = DistSpec("gone-pkg", "1.0")
    _upload(alice, f"{url}/alice/dev/", gone, content=(make_wheel(gone).filename,
                                                       make_wheel(gone).content))
    _ok(alice.delete(f"{url}/alice/dev/gone-pkg"))
    sdist = f"{url}/alice/dev/+f/{dists[0].sha256[:3]}/{dists[0].sha256[3:16]}/{dists[0].filename}"
    _ok(alice.post(sdist, json={"testenvs": {"py3": {"test": [{"retcode": 0}]}},
                               "installed": "migration"}))
    devpi = DevpiCLI.create(work / "client")
    devpi("use", f"{url}/bob/stage")
    devpi("login", "bob", "--password", PASSWORDS["bob"])
    tool = make_wheel(DistSpec("bob-tool", "3.1"))
    devpi("upload", str(tool.write(work)))
    # what ``devpi push`` sends (a devpi-client run costs seconds here; upload showed the CLI)
    _ok(bob.request("PUSH", f"{url}/alice/dev", json={"name": "hello-pkg", "version": "1.0",
                                                     "targetindex": "bob/stage"}))
    return root


def record_state(url: str, session: requests.Session | None = None) -> dict[str, Any]:
    """What the server answers for every user, index, project and version (as root)."""
    session = session or _session("root", url)
    state: dict[str, Any] = {"users": {}, "indexes": {}, "projects": {}, "files": {}}
    for name in PASSWORDS:
        state["users"][name] = _ok(session.get(f"{url}/{name}")).json()["result"]
    for index in INDEXES:
        state["indexes"][index] = _ok(session.get(f"{url}/{index}")).json()["result"]
    for index, projects in PROJECTS.items():
        for project in projects:
            result = _ok(session.get(f"{url}/{index}/{project}")).json()["result"]
            state["projects"][f"{index}/{project}"] = result
            for verdata in result.values():
                for link in verdata.get("+links", ()):
                    path = link["href"].split("/", 3)[3].split("#")[0]
                    raw = session.get(f"{url}/{path}", headers={"Accept": "*/*"})
                    state["files"][path] = _ok(raw).content.hex()
    return state


def build(base: Path) -> Scenario:
    """The scenario under ``base`` (shared by every worker; built by the first)."""
    done = base / "state.json"
    with FileLock(str(base / "build.lock")):
        if not done.exists():
            harness = peer_harness()
            (base / "server").mkdir(parents=True, exist_ok=True)
            server = harness.start_devpi_server(base / "server", extra=FAST_ARGON2)
            try:
                root = populate(server.url, base / "server")
                state = record_state(server.url, root)
            finally:
                server.stop()
            export = [str(harness.PEER_VENV / "bin" / "devpi-export"),
                      "--serverdir", str(server.serverdir), str(base / "dump")]
            subprocess.run(export, check=True, capture_output=True, env=clean_env(), timeout=120)
            done.write_text(json.dumps(state))
    return Scenario(base / "dump", json.loads(done.read_text()))
