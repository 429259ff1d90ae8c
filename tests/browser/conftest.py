"""A real Chromium (Debian's ``chromium``) driven by Playwright, on one real server.

Playwright drives the browser over the DevTools protocol and is pointed at Debian's
executable (``executable_path``); it never downloads a browser of its own. It launches the
browser with a new, empty profile directory (``--user-data-dir`` in a temporary directory it
removes afterwards) and the flags below, which keep Chromium from talking to anything but the
test server. One browser and one server serve the whole session; each test gets a fresh
browser context (cookies, cache), cheap to make.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
import requests

from devpi_core.testing.devpiclient import running_server
from devpi_core.testing.dists import DistSpec, make_wheel
from devpi_core.testing.plugin import missing_component, tool_path

if TYPE_CHECKING:
    from collections.abc import Iterator

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-proxy-server", "--disable-dev-shm-usage"]
# reports Content-Security-Policy violations where the test can read them
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
    e => window.__csp.push(e.violatedDirective + " " + e.blockedURI));
"""
USER, PASSWORD, INDEX = "alice", "secret-1", "alice/dev"
MARKDOWN = """\
# Tabular

A project with a **Markdown** description.

| option | meaning |
|--------|---------|
| `-v`   | verbose |

```python
def greet(name: str) -> str:
    return f"hello {name}"
```
"""
RST = """\
Restructured
============

A description in *reStructuredText* with a `link <https://example.org/>`_.

.. code:: python

    import os
"""
HOSTILE = """\
# Hostile

<script>window.__pwned = 1</script>
<img src="x" onerror="window.__pwned = 2" alt="broken">
[click me](javascript:window.__pwned=3)
<a href="javascript:window.__pwned=4" onclick="window.__pwned=5">or me</a>
<div style="background: red">styled</div>
<iframe src="https://example.org/"></iframe>
"""
PACKAGES = (
    ("tabular", "1.0", MARKDOWN, "text/markdown; charset=UTF-8; variant=GFM",
     "renders tables and code"),
    ("restructured", "2.0", RST, "text/x-rst", "a reStructuredText description"),
    ("plain-text", "0.1", "Just text.\n  indented <b>not bold</b>", "text/plain", "plain words"),
    ("hostile", "6.6.6", HOSTILE, "text/markdown", "tries to run script"),
)


@dataclass
class Site:
    """The server with the uploaded packages, and what a page reported."""

    url: str
    files: dict[str, bytes] = field(default_factory=dict)

    def sha256(self, filename: str) -> str:
        """The digest of an uploaded file."""
        return hashlib.sha256(self.files[filename]).hexdigest()


def _upload(session: requests.Session, url: str, name: str, version: str, description: str,
            ctype: str, summary: str) -> tuple[str, bytes]:
    dist = make_wheel(DistSpec(name, version, summary=summary, requires_python=">=3.9",
                               extra_metadata=(f"Project-URL: Source, https://src.example/{name}",)))
    form = {":action": "file_upload", "name": name, "version": version, "protocol_version": "1",
            "summary": summary, "description": description, "description_content_type": ctype}
    response = session.post(f"{url}/{INDEX}/", data=form, timeout=30,
                            files={"content": (dist.filename, dist.content)})
    assert response.status_code == 200, response.text
    return dist.filename, dist.content


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One server with alice/dev holding a package per description format."""
    with running_server(tmp_path_factory.mktemp("browser-server")) as server:
        found = Site(server.url.rstrip("/"))
        with requests.Session() as session:
            session.trust_env = False
            session.headers["Accept"] = "application/json"
            made = session.put(f"{found.url}/{USER}", json={"password": PASSWORD}, timeout=30)
            assert made.status_code in (200, 201), made.text
            session.auth = (USER, PASSWORD)
            index = session.put(f"{found.url}/{INDEX}", json={"title": "Development"},
                                timeout=30)
            assert index.status_code in (200, 201), index.text
            for package in PACKAGES:
                filename, content = _upload(session, found.url, *package)
                found.files[filename] = content
        yield found


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, launched once per session by Playwright."""
    executable = tool_path("chromium")
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415 - a missing one skips
    except ImportError:  # pragma: no cover - the test extra installs it
        missing_component("playwright (pip package, in the test extra) is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


class Watched:
    """A page with its console errors, uncaught exceptions and CSP violations recorded."""

    def __init__(self, page: Any, *, scripts: bool) -> None:
        self.page = page
        self.scripts = scripts
        self.errors: list[str] = []
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught {exc}"))

    def csp_violations(self) -> list[str]:
        """The violations this document reported (needs scripts on to read them)."""
        return list(self.page.evaluate("window.__csp || []")) if self.scripts else []

    def assert_clean(self) -> None:
        """No console error, no uncaught exception, no CSP violation on the current page."""
        assert self.errors == []
        assert self.csp_violations() == []


@pytest.fixture
def browser_page(chromium: Any) -> Iterator[Watched]:
    """A fresh context and page, scripts on, watched for errors and CSP violations."""
    context = chromium.new_context(accept_downloads=True)
    context.add_init_script(WATCH_CSP)
    context.set_default_timeout(15_000)
    try:
        yield Watched(context.new_page(), scripts=True)
    finally:
        context.close()


@pytest.fixture
def noscript_page(chromium: Any) -> Iterator[Watched]:
    """A fresh context and page with JavaScript disabled."""
    context = chromium.new_context(java_script_enabled=False, accept_downloads=True)
    context.set_default_timeout(15_000)
    try:
        yield Watched(context.new_page(), scripts=False)
    finally:
        context.close()
