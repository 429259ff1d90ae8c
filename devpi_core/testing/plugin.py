"""The pytest plugin of devpi-core: fixtures for apps, clients and real server processes.

Loaded through the ``pytest11`` entry point, so third-party plugins' test suites get the same
fixtures: ``make_app``, ``client``, ``devpi_server`` and the clean environment for installers.
"""

from __future__ import annotations

import importlib
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
from typing import TYPE_CHECKING, Any, NoReturn

import pytest
from ruamel.yaml import YAML

if TYPE_CHECKING:
    from types import ModuleType

    from devpi_core.testing.client import Client
    from devpi_core.testing.upstream import FakeUpstream

# Core modules are imported inside the fixtures, not here: pytest loads this plugin (an entry
# point) before coverage starts, and module-level imports would hide core's module-level lines
# from the coverage report.

# Cheap password hashing for tests; production defaults are deliberately slow.
FAST_HASHING = {"argon2_time_cost": 1, "argon2_memory_cost": 8, "argon2_parallelism": 1}
LOOPBACK = ("127.", "::1", "localhost")
# Fake upstreams and second servers run on loopback, which the server refuses to connect to by
# default (server.outbound_allow); tests allow it explicitly, the default stays strict.
OUTBOUND_ALLOW_LOOPBACK = ["127.0.0.0/8", "::1", "localhost"]


def server_config(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A configuration for tests: fast hashing, loopback allowed as an upstream and push target
    (``server.outbound_allow``), plus ``extra`` merged in (``{"server": {"outbound_allow": []}}``
    restores the default)."""
    config: dict[str, Any] = {
        "server": {"outbound_allow": list(OUTBOUND_ALLOW_LOOPBACK)},
        "plugins": {"passwd": dict(FAST_HASHING)},
    }
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
    dropped = ("PIP_", "UV_", "TWINE_", "DEVPI_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
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


def missing_component(reason: str) -> NoReturn:
    """Skip a test whose outside component (nginx, devpi-server, ...) is not installed.

    Under ``CI=true`` the same test fails instead: CI must run every test, so a component that
    ``make test`` could not install is an error there, never a silent skip.
    """
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: make test must install it)", pytrace=False)
    pytest.skip(reason)


def import_component(name: str, reason: str) -> ModuleType:
    """Import a module a test module needs (an extra's library) at module level, or skip the
    whole module with ``reason``; under ``CI=true`` its collection fails instead."""
    try:
        return importlib.import_module(name)
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: make test must install it)", pytrace=False)
        pytest.skip(reason, allow_module_level=True)


def tool_path(name: str) -> str:
    """A program on ``PATH`` or in the sbin directories (a Debian tool the tests drive: nginx,
    logrotate are there, outside a normal user's ``PATH``), or :func:`missing_component`."""
    found = shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin")
    if found is None:
        missing_component(f"{name} is not installed")
    return found


def bin_path(name: str) -> str:
    """An executable installed beside the running Python (``.venv/bin/<name>``)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    return tool_path(name)


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


def pytest_configure(config: pytest.Config) -> None:
    """Add the PostgreSQL fixtures (``postgres_server``, ``postgres_dsn``)."""
    from devpi_core.testing import postgres

    if not config.pluginmanager.is_registered(postgres):
        config.pluginmanager.register(postgres, "devpi_core.testing.postgres")


# -- in-process apps ------------------------------------------------------------------------
AppFactory = Callable[..., "Client"]


@pytest.fixture
def plugins_needed() -> tuple[str, ...] | None:
    """The installed plugins (entry-point names) :func:`make_app` loads; None: all of them.

    A plugin's test suite overrides this fixture in its ``conftest.py`` with its own name and
    those of the plugins it needs, so its tests show it works without the others.
    """
    return None


def only_plugins(
    config: Mapping[str, Any] | None, needed: tuple[str, ...] | None
) -> Mapping[str, Any] | None:
    """``config`` with every installed plugin but ``needed`` disabled (unless the test chose
    its plugins itself)."""
    chosen = (config or {}).get("plugins", {})
    if needed is None or "enabled" in chosen or "disabled" in chosen:
        return config
    from devpi_core.plugins import available_entrypoints

    others = sorted(set(available_entrypoints()) - set(needed))
    return {**(config or {}), "plugins": {**chosen, "disabled": others}}


@pytest.fixture
def make_app(
    tmp_path_factory: pytest.TempPathFactory, plugins_needed: tuple[str, ...] | None
) -> Iterator[AppFactory]:
    """Build an initialised app: ``make_app(config=None, modules=(), entrypoints=True)``.

    Returns a :class:`Client`; ``client.app.app.registry`` is the Pyramid registry. Only the
    plugins of the ``plugins_needed`` fixture are loaded from entry points (all by default).
    """
    registries: list[Any] = []

    def factory(
        config: Mapping[str, Any] | None = None,
        *,
        modules: tuple[tuple[str, object], ...] = (),
        entrypoints: bool = True,
        default_indexes: bool = False,
        root_password: str = "",
    ) -> Client:
        import webtest

        from devpi_core import services
        from devpi_core.app import make_app as build_app
        from devpi_core.bootstrap import initialise_data, load_plugins
        from devpi_core.config import load_raw
        from devpi_core.serverdir import create
        from devpi_core.testing.client import Client

        config = only_plugins(config, plugins_needed)
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
    if registries:
        from devpi_core import services

        for registry in registries:
            services.shutdown(registry)


@pytest.fixture
def client(make_app: AppFactory) -> Client:
    """A fresh app with the bundled plugins, as an anonymous client."""
    return make_app()


@pytest.fixture
def fake_upstream() -> Iterator[FakeUpstream]:
    """A fake upstream simple index on 127.0.0.1 (see :mod:`devpi_core.testing.upstream`)."""
    from devpi_core.testing.upstream import FakeUpstream

    with FakeUpstream() as upstream:
        yield upstream


# -- real server processes ------------------------------------------------------------------
@dataclass
class ServerProcess:
    """A ``devpi-core serve`` subprocess on 127.0.0.1 with a free port.

    ``command`` replaces the ``devpi-core`` executable (e.g. ``[python, "-m", "devpi_core"]`` of
    another environment). Output (standard output and error) is collected in ``output`` as it
    arrives; :meth:`wait_for` blocks until a line matches.
    """

    serverdir: Path
    config: Path
    process: subprocess.Popen[str] | None = None
    url: str = ""
    output: list[str] = field(default_factory=list)
    command: list[str] | None = None
    env: dict[str, str] | None = None
    _arrived: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _pump: threading.Thread | None = field(default=None, repr=False)

    def start(self, *extra: str, timeout: float = 30) -> ServerProcess:
        """Start and wait until the server announces its URL."""
        executable = self.command or [bin_path("devpi-core")]
        args = [*executable, "serve", "--serverdir", str(self.serverdir),
                "--config", str(self.config), "--port", "0", *extra]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, env=self.env or clean_env())
        first = len(self.output)  # a restart must not find the last run's announcement
        self._pump = threading.Thread(target=self._follow, args=(self.process,), daemon=True)
        self._pump.start()
        try:
            match = self.wait_for(r"serving .* on (http://\S+/)", timeout=timeout, start=first)
        except AssertionError:
            self.stop()
            raise RuntimeError("server did not start:\n" + self.log()) from None
        self.url = match.group(1).rstrip("/")
        return self

    def _follow(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self._arrived:
                self.output.append(line)
                self._arrived.notify_all()
        with self._arrived:
            self._arrived.notify_all()

    def wait_for(self, pattern: str, *, timeout: float = 30, start: int = 0) -> re.Match[str]:
        """The first output line from index ``start`` on that matches ``pattern``; waits for it.

        Fails (AssertionError with the output) after ``timeout`` seconds or when the process
        ended without printing it.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = start
        with self._arrived:
            while True:
                for line in self.output[seen:]:
                    found = regex.search(line)
                    if found:
                        return found
                seen = max(seen, len(self.output))
                ended = self._pump is None or not self._pump.is_alive()
                remaining = deadline - time.monotonic()
                if ended or remaining <= 0:
                    raise AssertionError(f"no output line matches {pattern!r}:\n{self.log()}")
                self._arrived.wait(remaining)

    def stop(self, sig: int | None = None) -> int | None:
        """Stop (SIGTERM by default) and wait; returns the exit status; output is complete."""
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
        if self._pump is not None:
            self._pump.join(timeout=10)
        code = self.process.returncode
        self.process = None
        return code

    def log(self) -> str:
        """Everything the server printed so far."""
        with self._arrived:
            return "".join(self.output)


ServerFactory = Callable[..., ServerProcess]


@pytest.fixture
def devpi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Start real servers: ``devpi_server(config=None, *extra_args)`` -> :class:`ServerProcess`.

    Keywords: ``serverdir`` (reuse one), ``start=False`` (only prepare), ``command`` (run
    another installation, e.g. ``[venv_python, "-m", "devpi_core"]``).
    """
    started: list[ServerProcess] = []

    def factory(config: Mapping[str, Any] | None = None, *extra: str, serverdir: Path | None = None,
                start: bool = True, command: list[str] | None = None) -> ServerProcess:
        base = tmp_path_factory.mktemp("server")
        config_file = write_config(base / "config.yml", server_config(config))
        handle = ServerProcess(serverdir or base / "serverdir", config_file, command=command)
        started.append(handle)
        return handle.start(*extra) if start else handle

    yield factory
    for handle in started:
        handle.stop()


# -- S3 -------------------------------------------------------------------------------------
from devpi_core.testing.s3server import s3_server  # noqa: E402, F401 - the fixture, offered here
