"""Driving devpi-client (the ``devpi`` command) against a real server, as a user would.

:class:`DevpiCLI` runs ``devpi`` from the test venv as a subprocess with its own ``--clientdir``
and ``$HOME`` and the clean environment of :func:`~devpi_core.testing.plugin.clean_env`.
:class:`ServerAPI` reads the server's state through its JSON API, so a test can check what a
command really changed. :func:`write_project` writes a small setuptools project that
``devpi upload``, ``devpi test`` and ``devpi upload --with-docs`` can build offline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from devpi_core.testing.plugin import (
    ServerProcess,
    bin_path,
    clean_env,
    server_config,
    write_config,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

DEFAULT_TIMEOUT = 60.0
# Test users' password; 8+ characters, else devpi passwd asks for confirmation.
PASSWORD = "secret-123"  # noqa: S105 - a fixed test password, never a real secret


def unique(prefix: str) -> str:
    """A name no other test uses (users and indexes of a module-wide server)."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class DevpiResult:
    """What one ``devpi`` invocation printed and returned."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def out(self) -> str:
        """stdout and stderr together (devpi prints errors on both)."""
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return (
            f"$ devpi {' '.join(self.args)}\n[exit {self.returncode}]\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


@dataclass
class DevpiCLI:
    """``devpi`` with a private client directory and home, run in a clean environment."""

    clientdir: Path
    home: Path
    timeout: float = DEFAULT_TIMEOUT
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, base: Path, **env: str) -> DevpiCLI:
        """A client whose state (clientdir, HOME with pip/uv config) lives under ``base``."""
        (base / "home").mkdir(parents=True, exist_ok=True)
        return cls(base / "clientdir", base / "home", env=dict(env))

    def environ(self, **extra: str) -> dict[str, str]:
        """The environment ``devpi`` runs in: the venv's tools first on PATH, nothing site-wide."""
        venv_bin = str(Path(sys.executable).parent)
        env = clean_env(home=self.home, PATH=venv_bin + os.pathsep + os.environ.get("PATH", ""))
        env.update(self.env)
        env.update(extra)
        return env

    def run(
        self,
        *args: str,
        code: int | None = 0,
        stdin: str | None = None,
        cwd: Path | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> DevpiResult:
        """Run ``devpi --clientdir DIR ARGS``; assert the exit status unless ``code`` is None.

        The process gets its own session (no controlling terminal), so password prompts read
        ``stdin`` as they would from a pipe.
        """
        command = [bin_path("devpi"), "--clientdir", str(self.clientdir), *args]
        completed = subprocess.run(
            command,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            cwd=cwd,
            env=self.environ(**dict(env or {})),
            timeout=timeout or self.timeout,
            start_new_session=True,
            check=False,
        )
        result = DevpiResult(tuple(args), completed.returncode, completed.stdout, completed.stderr)
        if code is not None and result.returncode != code:
            raise AssertionError(f"expected exit status {code}\n{result}")
        return result

    __call__ = run

    def token(self) -> tuple[str, str] | None:
        """The ``(user, login token)`` the client stored, if logged in."""
        path = self.clientdir / "auth.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        for entries in data.get("auth", {}).values():
            if entries:
                user, token = entries[0]
                return str(user), str(token)
        return None


class ServerAPI:
    """Reads and writes the server's JSON API directly, to check what a command did."""

    def __init__(self, url: str, auth: tuple[str, str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.auth = auth
        self.session = requests.Session()
        self.session.trust_env = False

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """``method`` on ``path`` (from the server root) with ``Accept: application/json``."""
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        url = path if path.startswith("http") else f"{self.url}/{path.lstrip('/')}"
        return self.session.request(
            method,
            url,
            headers=headers,
            auth=self.auth,
            timeout=30,
            allow_redirects=False,
            **kwargs,
        )

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET ``path``."""
        return self.request("GET", path, **kwargs)

    def result(self, path: str) -> Any:
        """The ``result`` of a successful GET of ``path``."""
        response = self.get(path)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()["result"]

    def status(self, path: str) -> int:
        """The status code of a GET of ``path``."""
        return self.get(path).status_code

    def close(self) -> None:
        """Close the connection pool."""
        self.session.close()


@contextmanager
def running_server(
    base: Path, config: Mapping[str, Any] | None = None, *extra: str
) -> Iterator[ServerProcess]:
    """A ``devpi-core serve`` on 127.0.0.1 (any free port) with its data under ``base``."""
    base.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(
        base / "serverdir", write_config(base / "config.yml", server_config(config))
    )
    server.start(*extra)
    try:
        yield server
    finally:
        server.stop()


@dataclass
class DevpiUser:
    """A user with an index of its own, logged in and using it (devpi-client's own fixture)."""

    devpi: DevpiCLI
    url: str
    name: str
    index: str
    password: str = PASSWORD

    @property
    def fullindex(self) -> str:
        """``user/index``."""
        return f"{self.name}/{self.index}"

    def api(self) -> ServerAPI:
        """A JSON client authenticated with this user's password."""
        return ServerAPI(self.url, (self.name, self.password))


def setup_user(devpi: DevpiCLI, url: str, *, index: str = "dev", **index_config: str) -> DevpiUser:
    """A fresh user with an index, which ``devpi`` uses and is logged in to.

    The user and index are created through the JSON API (the CLI commands for that have their
    own tests); ``devpi use`` and ``devpi login`` run as the user would type them.
    """
    name = unique("u")
    # anonymous until the user exists: credentials of an unknown user count as a failed login
    api = ServerAPI(url)
    try:
        created = api.request(
            "PUT", name, json={"password": PASSWORD, "email": f"{name}@example.com"}
        )
        assert created.status_code == 201, created.text
        api.auth = (name, PASSWORD)
        created = api.request("PUT", f"{name}/{index}", json=index_config)
        assert created.status_code == 200, created.text
    finally:
        api.close()
    devpi("use", f"{url}/{name}/{index}")
    devpi("login", name, "--password", PASSWORD)
    return DevpiUser(devpi, url, name, index)


def write_project(
    directory: Path, name: str, version: str, *, docs: bool = False, tox_command: str | None = None
) -> Path:
    """A setuptools project without dependencies that builds offline (``--no-isolation``).

    ``docs`` adds a Sphinx ``doc/`` directory (for ``--with-docs``); ``tox_command`` adds a
    ``tox.ini`` (shipped in the sdist) whose test command it is (for ``devpi test``).
    """
    module = name.replace("-", "_").lower()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / module).mkdir(exist_ok=True)
    (directory / module / "__init__.py").write_text(f"__version__ = {version!r}\n")
    (directory / "setup.py").write_text(
        "from setuptools import setup\n"
        f"setup(name={name!r}, version={version!r}, packages=[{module!r}],\n"
        f"      description='{name} for devpi-client tests', author='Tester')\n"
    )
    manifest = []
    if tox_command is not None:
        (directory / "tox.ini").write_text(f"[testenv]\ncommands = {tox_command}\n")
        manifest.append("include tox.ini")
    (directory / "MANIFEST.in").write_text("\n".join(manifest) + "\n")
    if docs:
        (directory / "doc").mkdir(exist_ok=True)
        (directory / "doc" / "conf.py").write_text(f"project = {name!r}\nhtml_theme = 'basic'\n")
        (directory / "doc" / "index.rst").write_text(
            textwrap.dedent(f"""\
            {name}
            {"=" * len(name)}

            Documentation of {name} {version}.
            """)
        )
    return directory


def run_checked(args: list[str], *, cwd: Path | None = None, timeout: float = 120) -> str:
    """Run a tool from the venv (``python -m build``...) in a clean env; return its output."""
    completed = subprocess.run(
        args, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert completed.returncode == 0, f"{args}: {completed.stdout}{completed.stderr}"
    return completed.stdout


def build_dists(project: Path, outdir: Path) -> list[Path]:
    """``python -m build --no-isolation`` of ``project`` into ``outdir``; the built files."""
    run_checked(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(outdir), str(project)]
    )
    return sorted(outdir.iterdir())
