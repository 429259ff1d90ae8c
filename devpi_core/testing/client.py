"""Driving a devpi-core app in product terms, through WebTest (in process) or a real server.

``Client`` wraps a ``webtest.TestApp``; every call goes through the WSGI stack exactly as an HTTP
request would, tweens and exception views included.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    import webtest

    from devpi_core.testing.dists import Dist

JSON = "application/json"
PEP691 = "application/vnd.pypi.simple.v1+json"


class Client:
    """A user of the server: JSON API calls, uploads and simple pages."""

    def __init__(self, app: webtest.TestApp) -> None:
        self.app = app
        self.auth: tuple[str, str] | None = None

    # -- plumbing ------------------------------------------------------------------------
    def _headers(
        self, extra: Mapping[str, str] | None = None, *, json_accept: bool = True
    ) -> dict[str, str]:
        headers = {"Accept": JSON} if json_accept else {}
        if self.auth is not None:
            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            headers["X-Devpi-Auth"] = token
        headers.update(extra or {})
        return headers

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        status: int | str = "*",
        headers: Mapping[str, str] | None = None,
    ) -> webtest.TestResponse:
        """Send JSON ``body`` (if not None) with ``method``; check ``status`` unless ``*``."""
        params = json.dumps(body) if body is not None else ""
        hdrs = self._headers(headers)
        if body is not None:
            hdrs.setdefault("Content-Type", JSON)
        response = self.app.request(
            path,
            method=method.upper(),
            body=params.encode(),
            headers=hdrs,
            expect_errors=True,
        )
        return checked(response, status)

    def get(self, path: str, *, status: int | str = 200, **headers: str) -> webtest.TestResponse:
        """GET with ``Accept: application/json`` unless headers override it."""
        response = self.app.get(path, headers=self._headers(headers), expect_errors=True)
        return checked(response, status)

    def get_json(self, path: str, *, status: int | str = 200) -> Any:
        """GET and return the decoded JSON body."""
        return self.get(path, status=status).json

    # -- users and login -----------------------------------------------------------------
    def create_user(
        self, name: str, password: str = "123", *, status: int = 201, **fields: Any
    ) -> Any:
        """``PUT /<name>``."""
        return self.request("PUT", f"/{name}", {"password": password, **fields}, status=status)

    def login(self, name: str, password: str = "123", *, status: int = 200) -> str | None:
        """``POST /+login``; on success later requests carry the token."""
        response = self.request(
            "POST", "/+login", {"user": name, "password": password}, status=status
        )
        if response.status_int != 200:
            return None
        token = str(response.json["result"]["password"])
        self.auth = (name, token)
        return token

    def use_password(self, name: str, password: str = "123") -> None:
        """Send the password itself with every request (as pip and twine do)."""
        self.auth = (name, password)

    def logout(self) -> None:
        """Send no credentials."""
        self.auth = None

    def create_and_login(self, name: str, password: str = "123") -> None:
        """Create a user and log in as them."""
        self.create_user(name, password)
        self.login(name, password)

    # -- indexes ---------------------------------------------------------------------------
    def create_index(self, fullname: str, *, status: int = 200, **config: Any) -> Any:
        """``PUT /<user>/<index>`` with ``config``."""
        return self.request("PUT", f"/{fullname}", config, status=status)

    def modify_index(self, fullname: str, change: Any, *, status: int = 200) -> Any:
        """``PATCH /<user>/<index>`` with a dict or a list of operations."""
        return self.request("PATCH", f"/{fullname}", change, status=status)

    # -- uploads ---------------------------------------------------------------------------
    def upload(
        self,
        fullname: str,
        dist: Dist,
        *,
        status: int | str = 200,
        action: str = "file_upload",
        **fields: Any,
    ) -> webtest.TestResponse:
        """A legacy upload form POST, as twine sends it."""
        name, _sep, rest = dist.filename.partition("-")
        version = rest.split("-")[0].removesuffix(".tar.gz").removesuffix(".zip")
        form = {
            ":action": action,
            "name": fields.pop("name", name),
            "version": fields.pop("version", version),
            "protocol_version": "1",
        }
        form.update(fields)
        response = self.app.post(
            f"/{fullname}/",
            params=list(form.items()),
            upload_files=[("content", dist.filename, dist.content)],
            headers=self._headers(json_accept=False),
            expect_errors=True,
        )
        return checked(response, status)

    # -- simple pages ----------------------------------------------------------------------
    def simple(
        self,
        fullname: str,
        project: str | None = None,
        *,
        json_api: bool = False,
        status: int = 200,
        **headers: str,
    ) -> webtest.TestResponse:
        """A simple page (``+simple/`` or ``+simple/<project>/``), HTML or PEP 691 JSON."""
        path = f"/{fullname}/+simple/" + (f"{project}/" if project else "")
        accept = PEP691 if json_api else "text/html"
        hdrs = {"Accept": accept, **headers}
        if self.auth is not None:
            hdrs.update({k: v for k, v in self._headers().items() if k == "X-Devpi-Auth"})
        return checked(self.app.get(path, headers=hdrs, expect_errors=True), status)

    def simple_filenames(self, fullname: str, project: str) -> list[str]:
        """Filenames on a project's PEP 691 page."""
        return [f["filename"] for f in self.simple(fullname, project, json_api=True).json["files"]]


def checked(response: webtest.TestResponse, status: int | str) -> webtest.TestResponse:
    """``response``, after checking its status unless ``status`` is ``"*"``.

    WebTest skips its own status check whenever ``expect_errors`` is on (which these calls need,
    so that a 5xx is an answer to look at rather than an exception): the check is done here.
    """
    if status not in ("*", response.status_int):
        request = response.request
        raise AssertionError(
            f"{request.method} {request.path_qs}: expected {status}, got {response.status}\n"
            f"{response.text[:1000]}"
        )
    return response
