"""The pytest plugin of devpi-core: fixtures for apps, clients and real server processes.

Loaded through the ``pytest11`` entry point, so third-party plugins' test suites get the same
fixtures: ``make_app``, ``client``, ``devpi_server`` and the clean environment for installers.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import webtest
from ruamel.yaml import YAML

from devpi_core import services
from devpi_core.app import make_app as build_app
from devpi_core.bootstrap import initialise_data, load_plugins
from devpi_core.config import load_raw
from devpi_core.serverdir import create
from devpi_core.testing.client import Client
from devpi_core.testing.upstream import FakeUpstream

# Cheap password hashing for tests; production defaults are deliberately slow.
FAST_HASHING = {"argon2_time_cost": 1, "argon2_memory_cost": 8, "argon2_parallelism": 1}
LOOPBACK = ("127.", "::1", "localhost")


def server_config(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A configuration for tests: fast hashing, plus ``extra`` merged in."""
    config: dict[str, Any] = {"plugins": {"passwd": dict(FAST_HASHING)}}
    for section, values in (extra or {}).items():
        if isinstance(values, Mapping) and isinstance(config.get(section), dict):
            for key, value in values.items():
                if isinstance(value, Mapping) and isinstance(config[section].get(key), dict):
                    config[section][key].update(value)
                else:
                    config[section][key] = value
        else:
            config[section] = values
    return config


def write_config(path: Path, config: Mapping[str, Any]) -> Path:
    """Write ``config`` as YAML to ``path``."""
    with path.open("w", encoding="utf-8") as f:
        YAML().dump(dict(config), f)
    return path


def clean_env(home: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment for pip, uv, twine and devpi subprocesses: no site-wide settings.

    Drops every ``PIP_*``, ``UV_*`` and ``TWINE_*`` variable, points pip at no config file and
    uv at none either, so a pass can only come from the server under test.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "TWINE_", "DEVPI_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["UV_NO_CONFIG"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if home is not None:
        env["HOME"] = str(home)
        env["XDG_CONFIG_HOME"] = str(home / ".config")
        env["XDG_CACHE_HOME"] = str(home / ".cache")
    env.update(extra)
    return env


def bin_path(name: str) -> str:
    """An executable installed beside the running Python (``.venv/bin/<name>``)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


# -- socket guard ---------------------------------------------------------------------------
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_address(sock: socket.socket, address: Any) -> None:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return
    host = str(address[0]) if isinstance(address, tuple) else str(address)
    if not host.startswith(LOOPBACK):
        raise OSError(f"test tried to connect to {host}: only 127.0.0.1 is allowed in tests")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_address(self, address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(self, address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def _loopback_only(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process code may only open connections to the loopback interface."""
    if request.node.get_closest_marker("internet") is None:
        monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
        monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)


# -- in-process apps ------------------------------------------------------------------------
AppFactory = Callable[..., Client]


@pytest.fixture
def make_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppFactory]:
    """Build an initialised app: ``make_app(config=None, modules=(), entrypoints=True)``.

    Returns a :class:`Client`; ``client.app.app.registry`` is the Pyramid registry.
    """
    registries: list[Any] = []

    def factory(config: Mapping[str, Any] | None = None, *, modules: tuple[tuple[str, ModuleType], ...] = (),
                entrypoints: bool = True, default_indexes: bool = False, root_password: str = "") -> Client:
        base = tmp_path_factory.mktemp("app")
        serverdir = base / "serverdir"
        raw = load_raw(str(write_config(base / "config.yml", server_config(config))))
        plugins, settings = load_plugins(raw, modules=modules, entrypoints=entrypoints)
        settings = settings.with_overrides(serverdir=str(serverdir))
        app = build_app(plugins, settings, create(str(serverdir)))
        registries.append(app.registry)
        # on the app's own stores: an in-memory store starts empty in every process
        initialise_data(services.users(app.registry), services.indexes(app.registry),
                        plugins=plugins, settings=settings, root_password=root_password,
                        default_indexes=default_indexes)
        return Client(webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1"}))

    yield factory
    for registry in registries:
        services.shutdown(registry)


@pytest.fixture
def client(make_app: AppFactory) -> Client:
    """A fresh app with the bundled plugins, as an anonymous client."""
    return make_app()


@pytest.fixture
def fake_upstream() -> Iterator[FakeUpstream]:
    """A fake upstream simple index on 127.0.0.1 (see :mod:`devpi_core.testing.upstream`)."""
    with FakeUpstream() as upstream:
        yield upstream


# -- real server processes ------------------------------------------------------------------
@dataclass
class ServerProcess:
    """A ``devpi-core serve`` subprocess on 127.0.0.1 with a free port."""

    serverdir: Path
    config: Path
    process: subprocess.Popen[str] | None = None
    url: str = ""
    output: list[str] = field(default_factory=list)

    def start(self, *extra: str, timeout: float = 30) -> ServerProcess:
        """Start and wait until the server announces its URL."""
        args = [bin_path("devpi-core"), "serve", "--serverdir", str(self.serverdir),
                "--config", str(self.config), "--port", "0", *extra]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=clean_env())
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output.append(line)
            match = re.search(r"serving .* on (http://\S+/)", line)
            if match:
                self.url = match.group(1).rstrip("/")
                _drain(self.process, self.output)
                return self
        self.stop()
        raise RuntimeError("server did not start:\n" + "".join(self.output))

    def stop(self, sig: int | None = None) -> int | None:
        """Stop (SIGTERM by default) and wait; returns the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            if sig is None:
                self.process.terminate()
            else:
                self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def log(self) -> str:
        """Everything the server printed so far."""
        return "".join(self.output)


def _drain(process: subprocess.Popen[str], sink: list[str]) -> None:
    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            sink.append(line)

    threading.Thread(target=pump, daemon=True).start()


ServerFactory = Callable[..., ServerProcess]


@pytest.fixture
def devpi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Start real servers: ``devpi_server(config=None, *extra_args)`` -> :class:`ServerProcess`."""
    started: list[ServerProcess] = []

    def factory(config: Mapping[str, Any] | None = None, *extra: str, serverdir: Path | None = None,
                start: bool = True) -> ServerProcess:
        base = tmp_path_factory.mktemp("server")
        handle = ServerProcess(serverdir or base / "serverdir", write_config(base / "config.yml", server_config(config)))
        started.append(handle)
        return handle.start(*extra) if start else handle

    yield factory
    for handle in started:
        handle.stop()
