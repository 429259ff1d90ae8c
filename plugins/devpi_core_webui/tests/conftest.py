"""Fixtures for the web UI's tests: a browser, and an app with releases, docs and tox results."""

from __future__ import annotations

import base64
import re
from html import unescape
from typing import TYPE_CHECKING, Any

import pytest

import devpi_core_webui
from devpi_core.testing.dists import DistSpec, make_doczip, make_sdist, make_wheel

if TYPE_CHECKING:
    from devpi_core.testing.client import Client

@pytest.fixture
def plugins_needed() -> tuple[str, ...]:
    """The UI shows stages (releases, docs, tox results) and mirrors, stored in the fsstore
    backends, to logged-in (passwd) users."""
    return ("webui", "stages", "mirror", "fsstore", "passwd")


# What Firefox sends for a page.
BROWSER = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
              "*/*;q=0.8",
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
}
WEBUI = (("webui", devpi_core_webui),)
TOXRESULT = {
    "reportversion": "1", "host": "buildhost", "platform": "linux",
    "testenvs": {
        "py311": {"setup": [{"retcode": "0", "command": ["pip", "install"]}],
                  "test": [{"retcode": "0", "command": ["pytest"]}],
                  "python": {"version": "3.11.9 (main) [GCC]"}},
        "py312": {"test": [{"retcode": 1, "command": ["pytest"]}],
                  "python": {"version": "3.12.4"}},
    },
}


class Browser:
    """A browser on the app: HTML Accept, a browser User-Agent, optional Basic credentials."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.auth: str | None = None

    def login(self, user: str, password: str = "123") -> None:
        """Send HTTP Basic credentials, as a browser does after its login prompt."""
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def get(self, path: str, *, status: int = 200, **headers: str) -> Any:
        """GET as a browser; checks the status."""
        sent = {**BROWSER, **headers}
        if self.auth:
            sent["Authorization"] = self.auth
        return self.client.app.get(path, headers=sent, status=status, expect_errors=True)


def text_of(page: str) -> str:
    """The visible text of a page, tags removed and whitespace collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", page)).split())


@pytest.fixture
def webui_app(make_app):
    """``make_app`` with the web UI registered whether or not its entry point is installed."""

    def factory(config: dict[str, Any] | None = None, **kwargs: Any) -> Client:
        return make_app(config, modules=WEBUI, **kwargs)

    return factory


def upload_docs(client: Client, index: str, name: str, version: str) -> None:
    """A documentation zip upload, as ``devpi upload --with-docs`` sends it."""
    form = [(":action", "doc_upload"), ("name", name), ("version", version)]
    client.app.post(f"/{index}/", params=form,
                    upload_files=[("content", f"{name}.zip", make_doczip())],
                    headers=client._headers(json_accept=False))


@pytest.fixture
def shop(webui_app) -> Client:
    """alice/dev with pkg 1.0 (wheel, sdist, docs, tox results) and a yanked 2.0; alice/prod
    inheriting from it; as alice (logged in for JSON calls)."""
    client = webui_app()
    client.create_and_login("alice")
    client.create_index("alice/dev", title="Dev <i>index</i>", description="work in progress")
    client.create_index("alice/prod", bases="alice/dev", volatile=False)
    spec = DistSpec("pkg", "1.0", summary="pkg does <script>alert(1)</script> things",
                    requires_python=">=3.9", requires_dist=["requests>=2", "attrs"])
    client.wheel = make_wheel(spec)
    client.upload("alice/dev", client.wheel)
    client.upload("alice/dev", make_sdist(spec))
    upload_docs(client, "alice/dev", "pkg", "1.0")
    client.upload("alice/dev", make_wheel(DistSpec("pkg", "2.0", summary="newer")))
    client.request("PATCH", "/alice/dev/pkg/2.0", {"yanked": "broken build"}, status=200)
    client.upload("alice/dev", make_wheel(DistSpec("other-thing", "0.1", summary="something else")))
    links = client.get_json("/alice/dev/pkg/1.0")["result"]["+links"]
    href = next(link["href"] for link in links if link["href"].endswith(".whl"))
    client.request("POST", href.replace("http://localhost", ""), TOXRESULT, status=200)
    return client


@pytest.fixture
def browser(shop) -> Browser:
    """An anonymous browser on :func:`shop`."""
    return Browser(shop)
