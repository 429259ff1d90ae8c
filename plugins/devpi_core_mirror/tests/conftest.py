"""Fixtures for the mirror plugin's tests: an app with ``root/fake`` mirroring a fake upstream."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import pytest

from devpi_core.testing.dists import Dist, DistSpec, make_sdist, make_wheel

if TYPE_CHECKING:
    from devpi_core.testing.client import Client
    from devpi_core.testing.upstream import FakeUpstream


@pytest.fixture
def plugins_needed() -> tuple[str, ...]:
    """Mirrors store in the fsstore backends; creating mirrors needs a logged-in (passwd) user."""
    return ("mirror", "fsstore", "passwd")


@dataclass
class Mirror:
    """A client of an app whose ``root/fake`` mirrors ``upstream``."""

    client: Client
    upstream: FakeUpstream
    index: str = "root/fake"

    def page(
        self, project: str, *, json_api: bool = True, status: int = 200, **headers: str
    ) -> Any:
        """The project page on the mirror (decoded JSON by default)."""
        response = self.client.simple(
            self.index, project, json_api=json_api, status=status, **headers
        )
        return response.json if json_api and status == 200 else response

    def file_url(self, project: str, filename: str) -> str:
        """The server path of ``filename`` as its page links it."""
        page = self.page(project)
        url = next(f["url"] for f in page["files"] if f["filename"] == filename)
        return urljoin(f"/{self.index}/+simple/{project}/", url)

    def download(self, project: str, filename: str, *, status: int = 200) -> Any:
        """GET the file through the mirror."""
        return self.client.app.get(
            self.file_url(project, filename), status=status, expect_errors=True
        )

    def wait_cached(self, count: int = 1, timeout: float = 10) -> None:
        """Wait until ``count`` files were committed (a download may return just before)."""
        deadline = time.monotonic() + timeout
        while self.metric("files_cached") < count:
            assert time.monotonic() < deadline, "files were not cached in time"
            time.sleep(0.01)

    def metric(self, name: str) -> float:
        """One ``devpi_mirror_<name>`` value from ``/+status``."""
        metrics = self.client.get_json("/+status")["result"]["metrics"]
        return next(value for key, _kind, value in metrics if key == f"devpi_mirror_{name}")

    @property
    def registry(self) -> Any:
        """The app's Pyramid registry."""
        return self.client.app.app.registry

    def settle(self) -> None:
        """Wait until fetched pages are in the store (they are written behind the answer)."""
        settle(self.registry)


def settle(registry: Any) -> None:
    """Wait until the mirror service of ``registry`` stored every fetched page."""
    from devpi_core import services  # noqa: PLC0415 - the app's modules load with the app
    from devpi_core_mirror.service import MirrorService  # noqa: PLC0415

    assert services.lookup(registry, MirrorService).writes.flush(timeout=10)


def wheel(name: str, version: str, **spec: Any) -> Dist:
    """A generated wheel."""
    return make_wheel(DistSpec(name, version, **spec))


def sdist(name: str, version: str) -> Dist:
    """A generated sdist."""
    return make_sdist(DistSpec(name, version))


@pytest.fixture
def make_mirror(make_app, fake_upstream):
    """``make_mirror(config=None, **index_config)`` -> :class:`Mirror` (root logged in)."""

    def factory(
        config: dict[str, Any] | None = None,
        *,
        upstream: FakeUpstream | None = None,
        **index_config: Any,
    ) -> Mirror:
        upstream = upstream or fake_upstream
        client = make_app(config)
        client.login("root", "")
        client.create_index("root/fake", type="mirror", mirror_url=upstream.url, **index_config)
        return Mirror(client, upstream)

    return factory


@pytest.fixture
def mirror(make_mirror):
    """``root/fake`` on a fresh app."""
    return make_mirror()
