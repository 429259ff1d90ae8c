"""A throw-away PostgreSQL cluster for tests: started once per session, on 127.0.0.1.

``postgres_server`` runs Debian's ``initdb``/``pg_ctl`` (``/usr/lib/postgresql/<ver>/bin``) in a
temporary directory with ``fsync=off``; as root it runs them as a system user (``postgres``, or
``devpi-pgtest`` created with ``useradd``), as PostgreSQL refuses to run as root.
``postgres_dsn`` gives each test a fresh, empty database. ``DEVPI_CORE_TEST_PG_DSN`` points the
same tests at an existing server instead (it must allow ``CREATE DATABASE``).
"""

from __future__ import annotations

import contextlib
import glob
import importlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from itertools import count
from typing import TYPE_CHECKING

import pytest

from devpi_core.testing.plugin import missing_component

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

TEST_USER = "devpi-pgtest"


@dataclass
class PostgresServer:
    """A running PostgreSQL server; ``dsn(dbname)`` connects to one of its databases."""

    host: str
    port: int
    user: str
    _names: Iterator[int] = field(default_factory=lambda: count(1))

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq connection string for ``dbname``."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def create_database(self) -> str:
        """Create an empty database and return its DSN."""
        psycopg = _psycopg()
        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.dsn(name)


def _psycopg() -> ModuleType:
    try:
        return importlib.import_module("psycopg")
    except ImportError:
        missing_component("psycopg is not installed: pip install 'devpi-core[postgresql]'")


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_key)
    path = found[-1] if found else shutil.which(name)
    if path is None:
        missing_component(f"PostgreSQL ({name}) is not installed: apt-get install postgresql")
    return path


def _version_key(path: str) -> int:
    version = path.split("/")[4]
    return int(version) if version.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _system_user() -> str | None:
    """None when not root; else a user that may run PostgreSQL (created if missing)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", TEST_USER):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(
        [_tool("useradd"), "--system", "--no-create-home", "--shell", "/bin/sh", TEST_USER],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return TEST_USER


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        missing_component(f"{name} is needed to run PostgreSQL as root")
    return found


def _as(user: str | None, argv: list[str]) -> list[str]:
    return argv if user is None else [_tool("runuser"), "-u", user, "--", *argv]


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL server (``DEVPI_CORE_TEST_PG_DSN``: that one instead), stopped
    and removed on exit; the ``postgres_server`` fixture, and benchmarks outside pytest."""
    _psycopg()
    if external := os.environ.get("DEVPI_CORE_TEST_PG_DSN"):
        yield _external(external)
        return
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    user = _system_user()
    tmp = tempfile.mkdtemp(prefix="devpi-pg-", dir="/tmp")
    if user is not None:
        shutil.chown(tmp, user)
    data, port = os.path.join(tmp, "data"), _free_port()
    _run(_as(user, [initdb, "-D", data, "-A", "trust", "-U", "devpi", "-E", "UTF8", "--no-sync"]))
    options = (
        f"-k {tmp} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
    )
    start = [pg_ctl, "-D", data, "-l", os.path.join(tmp, "log"), "-w", "-o", options, "start"]
    try:
        _run(_as(user, start))
    except subprocess.CalledProcessError as exc:
        log = open(os.path.join(tmp, "log")).read()[-2000:]  # noqa: SIM115
        pytest.fail(f"PostgreSQL did not start: {exc.stderr!r}\n{log}")
    try:
        yield PostgresServer("127.0.0.1", port, "devpi")
    finally:
        stop = [pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"]
        subprocess.run(_as(user, stop), check=False, capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session (stopped at its end)."""
    with running_postgres() as server:
        yield server


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=60)


def _external(dsn: str) -> PostgresServer:
    psycopg = _psycopg()
    with psycopg.connect(dsn) as conn:
        info = conn.info
        return PostgresServer(info.host, int(info.port), info.user)


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> str:
    """The DSN of a fresh, empty database on the session's PostgreSQL server."""
    return postgres_server.create_database()

