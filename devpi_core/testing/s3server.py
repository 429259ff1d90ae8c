"""A real S3 API for tests: moto's standalone server in a subprocess on 127.0.0.1.

The session-scoped ``s3_server`` fixture starts ``moto_server`` once per test session (and once
per xdist worker) on a free port and yields an :class:`S3Server`; ``s3_server.new_bucket()``
gives each test a bucket of its own. Cluster tests reuse the same endpoint for every node.
"""

from __future__ import annotations

import itertools
import os
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

# moto accepts any credentials; these make a client independent of the environment's
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REGION = "us-east-1"
START_TIMEOUT = 30.0


@dataclass
class S3Server:
    """A running S3 endpoint and the buckets tests made on it."""

    endpoint: str
    process: subprocess.Popen[bytes] | None
    _names: Iterator[int] = field(default_factory=itertools.count)
    _client: Any = None

    def client(self) -> Any:
        """The boto3 S3 client for this endpoint (path-style addressing, test credentials);
        one per server, as building a client costs ~0.2 s."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            config=Config(s3={"addressing_style": "path"}),
            **CREDENTIALS,
        )

    def new_bucket(self) -> str:
        """Create an empty bucket with a unique name and return the name."""
        name = f"test-{secrets.token_hex(4)}-{next(self._names)}"
        self.client().create_bucket(Bucket=name)
        return name

    def settings(self, bucket: str, **extra: Any) -> dict[str, Any]:
        """A ``plugins.s3store`` section for ``bucket`` on this server."""
        section: dict[str, Any] = {
            "endpoint_url": self.endpoint,
            "bucket": bucket,
            "region": REGION,
            "addressing_style": "path",
            "access_key_id": CREDENTIALS["aws_access_key_id"],
            "secret_access_key": CREDENTIALS["aws_secret_access_key"],
        }
        section.update(extra)
        return section


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll ``url`` until it answers; raise RuntimeError if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URL
                response.read()
                return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not answer on {url} in {timeout} s") from None
            time.sleep(0.05)


def start_moto(executable: str, *, timeout: float = START_TIMEOUT) -> S3Server:
    """Start ``moto_server`` on a free loopback port and wait until it answers."""
    port = free_port()
    process = subprocess.Popen(
        [executable, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{endpoint}/moto-api/", process, timeout)
    except BaseException:
        stop(process)
        raise
    return S3Server(endpoint, process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate ``process`` (by its own handle), killing it if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A moto S3 server for the whole session (``DEVPI_CORE_TEST_S3_ENDPOINT`` uses another).

    Skips (fails under ``CI=true``) when moto's server is not installed: ``.[test]`` has it.
    """
    from devpi_core.testing.plugin import bin_path, missing_component

    given = os.environ.get("DEVPI_CORE_TEST_S3_ENDPOINT")
    if given:
        yield S3Server(given.rstrip("/"), None)
        return
    try:
        import boto3  # noqa: F401 - only checking that the client library is there
    except ImportError:
        missing_component("boto3 is not installed (pip install -e '.[test]')")
    server = start_moto(bin_path("moto_server"))
    try:
        yield server
    finally:
        assert server.process is not None
        stop(server.process)
