"""Every request devpi-client can make, by every kind of caller, answered as devpi-server does.

The table below is (endpoint x who x state): users, indexes, ``/+login``, uploads (the legacy
form POST: ``file_upload``, ``submit``, ``doc_upload``), push, tox results, deletion of
projects, versions and files (``devpi remove``), ``+api``, ``+simple`` and the project JSON;
asked by an anonymous client, the owner (``alice``), another user (``bob``), ``root``, a user
who deleted itself while logged in (``carl``) and a wrong token (``bad``); against users,
indexes, projects, versions and files that exist or not.

Both servers start once for the module, get the same users, indexes and uploads, then run the
whole table in order (cases that change state use names of their own, so the order only
matters for the few that say so). Each case is a plain HTTP request with the headers
devpi-client sends (``Accept`` and ``Content-Type: application/json``, ``X-Devpi-Auth:
base64(user:token)``; uploads as its multipart form). A test per case compares the status
code, and for JSON answers the envelope (``type``, and whether ``result`` and ``message`` are
there): what devpi-client prints and decides on; whether a ``WWW-Authenticate`` challenge
comes with it; and for an upload refused with 401 the reason phrase, which ``devpi upload``
prints after ``FAIL``. (devpi-server answers uploads with HTML pages, devpi-core with JSON or
text: the bodies are not compared there, see "Error bodies" in the compatibility page.)

devpi-core's deliberate differences (docs/devpi-compatibility.rst) do not show in this table:
both servers refuse a login token at ``/+login``, failed-login throttling is off here (devpi-
server has none; the passwd plugin's tests cover it), and ``acl_read``, which devpi-server
lacks, has tests of its own.
"""

from __future__ import annotations

import base64
import functools
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import requests
from peer import FAST_ARGON2, peer_harness

from devpi_core.testing.devpiclient import running_server
from devpi_core.testing.dists import Dist, DistSpec, make_doczip, make_sdist

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
TIMEOUT = 30
JSON = "application/json"
OWNER, OTHER, DELETED = "alice", "bob", "carl"
USERS = (OWNER, OTHER, DELETED, "pwself", "vself")
WHO = ("anon", OWNER, OTHER, "root", DELETED, "bad")
UPLOAD, DOCS, SUBMIT, NO_ACTION = "file_upload", "doc_upload", "submit", "no_action"


def password(user: str) -> str:
    return f"pw-{user}-123"


@functools.cache
def sdist(project: str, variant: str = "") -> Dist:
    """The same bytes every time (an sdist's gzip header holds the time it was made)."""
    return make_sdist(DistSpec(project, "1.0", summary=f"status parity {variant}".strip()))


@dataclass(frozen=True)
class Case:
    """One request: ``path`` may hold ``{file:<index>/<project>/<version>}`` (a release
    file's path, which differs between the servers)."""

    id: str
    method: str
    path: str
    who: str = "anon"
    body: Any = None
    form: str | None = None  # an upload: the form's :action
    project: str = "pkg"
    accept: str = JSON  # pip asks the simple pages for HTML
    variant: str = ""  # another summary: another file of the same name


def _user_cases(add: Callable[[Case], None]) -> None:
    user_body = {"password": "pw-new-123"}
    for who in ("anon", OWNER, "bad", DELETED):
        add(Case(f"list-users-{who}", "GET", "/", who))
    add(Case("get-user", "GET", f"/{OWNER}"))
    add(Case("get-user-missing", "GET", "/nouser"))
    add(Case("get-user-deleted-self", "GET", f"/{DELETED}", DELETED))
    for who in WHO:
        add(Case(f"create-user-{who}", "PUT", f"/new-{who}", who, user_body))
    add(Case("create-user-exists", "PUT", f"/{OWNER}", "anon", user_body))
    add(Case("create-user-exists-root", "PUT", f"/{OWNER}", "root", user_body))
    add(Case("create-user-no-password", "PUT", "/new-nopw", "anon", {"email": "x@example.org"}))
    add(Case("create-user-empty-password", "PUT", "/new-emptypw", "anon", {"password": ""}))
    add(Case("login-created-empty-password", "POST", "/+login", "anon",
             {"user": "new-emptypw", "password": ""}))
    for who in WHO:
        add(Case(f"modify-user-{who}", "PATCH", f"/{OWNER}", who, {"email": f"{who}@example.org"}))
        add(Case(f"modify-user-password-{who}", "PATCH", f"/{OTHER}-2", who,
                 {"password": password(f"{OTHER}-2")}))
    add(Case("modify-user-password-self", "PATCH", f"/{OWNER}", OWNER,
             {"password": password(OWNER)}))
    add(Case("modify-user-missing-anon", "PATCH", "/nouser", "anon", {"email": "x@example.org"}))
    add(Case("modify-user-missing-root", "PATCH", "/nouser", "root", {"email": "x@example.org"}))
    add(Case("modify-user-deleted-self", "PATCH", f"/{DELETED}", DELETED, {"email": "x@ex.org"}))
    # item 1 of the issue: an empty password is a password (devpi user -m u password=)
    add(Case("modify-user-empty-password-self", "PATCH", "/pwself", "pwself", {"password": ""}))
    add(Case("login-after-empty-password", "POST", "/+login", "anon",
             {"user": "pwself", "password": ""}))
    add(Case("modify-user-empty-password-root", "PATCH", f"/{OTHER}-2", "root", {"password": ""}))
    for who in ("anon", OTHER, "bad", "root"):
        add(Case(f"delete-user-{who}", "DELETE", f"/victim-{who}", who))
    add(Case("delete-user-self", "DELETE", "/vself", "vself"))
    add(Case("delete-user-deleted-self", "DELETE", f"/{DELETED}", DELETED))
    add(Case("delete-user-missing-anon", "DELETE", "/nouser", "anon"))
    add(Case("delete-user-missing-root", "DELETE", "/nouser", "root"))
    add(Case("delete-user-root", "DELETE", "/root", "root"))
    add(Case("delete-user-with-non-volatile-index", "DELETE", f"/{OWNER}-prod", "root"))


def _index_cases(add: Callable[[Case], None]) -> None:
    add(Case("get-index", "GET", f"/{OWNER}/dev"))
    add(Case("get-index-no-projects", "GET", f"/{OWNER}/dev?no_projects="))
    add(Case("get-index-missing", "GET", f"/{OWNER}/nope"))
    add(Case("get-index-user-missing", "GET", "/nouser/dev"))
    for who in WHO:
        add(Case(f"create-index-{who}", "PUT", f"/{OWNER}/new-{who}", who, {}))
        add(Case(f"create-index-exists-{who}", "PUT", f"/{OWNER}/dev", who, {}))
        add(Case(f"create-index-user-missing-{who}", "PUT", "/nouser/dev", who, {}))
    add(Case("create-index-deleted-self", "PUT", f"/{DELETED}/dev", DELETED, {}))
    add(Case("create-index-bad-type", "PUT", f"/{OWNER}/badtype", OWNER, {"type": "nope"}))
    add(Case("create-index-bad-key", "PUT", f"/{OWNER}/badkey", OWNER, {"nokey": 1}))
    for who in WHO:
        add(Case(f"modify-index-{who}", "PATCH", f"/{OWNER}/dev", who, {"title": who}))
    add(Case("modify-index-list", "PATCH", f"/{OWNER}/dev", OWNER, ["title=listed"]))
    add(Case("modify-index-missing", "PATCH", f"/{OWNER}/nope", OWNER, ["title=x"]))
    add(Case("modify-index-user-missing", "PATCH", "/nouser/dev", "root", ["title=x"]))
    for who in WHO:
        add(Case(f"delete-index-{who}", "DELETE", f"/{OWNER}/tmp-{who}", who))
    add(Case("delete-index-missing", "DELETE", f"/{OWNER}/nope", OWNER))
    add(Case("delete-index-user-missing", "DELETE", "/nouser/dev", "root"))
    add(Case("delete-index-non-volatile", "DELETE", f"/{OWNER}/prod", OWNER))


def _login_cases(add: Callable[[Case], None]) -> None:
    add(Case("login", "POST", "/+login", "anon", {"user": OWNER, "password": password(OWNER)}))
    add(Case("login-wrong-password", "POST", "/+login", "anon", {"user": OWNER, "password": "x"}))
    add(Case("login-user-missing", "POST", "/+login", "anon", {"user": "nouser", "password": "x"}))
    add(Case("login-deleted", "POST", "/+login", "anon",
             {"user": DELETED, "password": password(DELETED)}))
    add(Case("login-no-password", "POST", "/+login", "anon", {"user": OWNER}))
    add(Case("login-with-token", "POST", "/+login", OWNER, {"user": OWNER, "password": "TOKEN"}))


def _upload_cases(add: Callable[[Case], None]) -> None:
    for who in WHO:
        add(Case(f"upload-{who}", "POST", f"/{OWNER}/dev/", who, form=UPLOAD,
                 project=f"up-{who}"))
        add(Case(f"doc-upload-{who}", "POST", f"/{OWNER}/dev/", who, form=DOCS))
        add(Case(f"submit-{who}", "POST", f"/{OWNER}/dev/", who, form=SUBMIT,
                 project=f"reg-{who}"))
    add(Case("upload-index-missing", "POST", f"/{OWNER}/nope/", OWNER, form=UPLOAD))
    add(Case("upload-user-missing", "POST", "/nouser/dev/", OWNER, form=UPLOAD))
    add(Case("upload-no-action", "POST", f"/{OWNER}/dev/", OWNER, form=NO_ACTION))
    add(Case("upload-identical-non-volatile", "POST", f"/{OWNER}/prod/", OWNER, form=UPLOAD))
    add(Case("upload-again-non-volatile", "POST", f"/{OWNER}/prod/", OWNER, form=UPLOAD,
             variant="changed"))
    add(Case("doc-upload-no-release", "POST", f"/{OWNER}/dev/", OWNER, form=DOCS,
             project="nodocs"))


def _push_cases(add: Callable[[Case], None]) -> None:
    push = {"name": "pkg", "version": "1.0", "targetindex": f"{OTHER}/dev"}
    for who in WHO:
        add(Case(f"push-{who}", "POST", f"/{OWNER}/dev", who, push))
    add(Case("push-version-missing", "POST", f"/{OWNER}/dev", OTHER, {**push, "version": "9"}))
    add(Case("push-target-missing", "POST", f"/{OWNER}/dev", OTHER,
             {**push, "targetindex": f"{OTHER}/nope"}))
    add(Case("push-index-missing", "POST", f"/{OWNER}/nope", OTHER, push))


def _toxresult_cases(add: Callable[[Case], None]) -> None:
    tox = {"reportversion": "1", "toxversion": "4.0", "platform": "linux", "host": "h",
           "testenvs": {}}
    for who in WHO:
        add(Case(f"toxresult-{who}", "POST", f"{{file:{OWNER}/dev/pkg/1.0}}", who, tox))
    add(Case("toxresult-file-missing", "POST", f"/{OWNER}/dev/+f/aaa/bbbbbbbbbbbbb/nope-1.0.tar.gz",
             OWNER, tox))


def _remove_cases(add: Callable[[Case], None]) -> None:
    for who in WHO:
        add(Case(f"remove-project-{who}", "DELETE", f"/{OWNER}/dev/delp-{who}", who))
        add(Case(f"remove-version-{who}", "DELETE", f"/{OWNER}/dev/delv-{who}/1.0", who))
        add(Case(f"remove-file-{who}", "DELETE", f"{{file:{OWNER}/dev/delf-{who}/1.0}}", who))
    add(Case("remove-project-missing", "DELETE", f"/{OWNER}/dev/nope", OWNER))
    add(Case("remove-version-missing", "DELETE", f"/{OWNER}/dev/pkg/9.9", OWNER))
    add(Case("remove-file-missing", "DELETE", f"/{OWNER}/dev/+f/aaa/bbbbbbbbbbbbb/no-1.0.tar.gz",
             OWNER))
    add(Case("remove-index-missing", "DELETE", f"/{OWNER}/nope/pkg", OWNER))
    add(Case("remove-file-index-missing", "DELETE", f"/{OWNER}/nope/+f/aaa/bbbbbbbbbbbbb/x.zip",
             OWNER))
    add(Case("remove-user-missing", "DELETE", "/nouser/dev/pkg", "root"))
    add(Case("remove-project-non-volatile", "DELETE", f"/{OWNER}/prod/pkg", OWNER))
    add(Case("remove-version-non-volatile", "DELETE", f"/{OWNER}/prod/pkg/1.0", OWNER))
    add(Case("remove-file-non-volatile", "DELETE", f"{{file:{OWNER}/prod/pkg/1.0}}", OWNER))


def _read_cases(add: Callable[[Case], None]) -> None:
    for who in ("anon", "bad", DELETED, OWNER):
        add(Case(f"api-{who}", "GET", "/+api", who))
        add(Case(f"index-api-{who}", "GET", f"/{OWNER}/dev/+api", who))
    add(Case("index-api-missing", "GET", f"/{OWNER}/nope/+api"))
    add(Case("index-api-user-missing", "GET", "/nouser/dev/+api"))
    for name, path in (
        ("project", f"/{OWNER}/dev/pkg"),
        ("project-missing", f"/{OWNER}/dev/nope"),
        ("version", f"/{OWNER}/dev/pkg/1.0"),
        ("version-missing", f"/{OWNER}/dev/pkg/9.9"),
        ("project-index-missing", f"/{OWNER}/nope/pkg"),
        ("file", f"{{file:{OWNER}/dev/pkg/1.0}}"),
        ("file-missing", f"/{OWNER}/dev/+f/aaa/bbbbbbbbbbbbb/no-1.0.tar.gz"),
    ):
        add(Case(f"get-{name}", "GET", path))
    for name, path in (
        ("simple-index", f"/{OWNER}/dev/+simple/"),
        ("simple-project", f"/{OWNER}/dev/+simple/pkg/"),
        ("simple-project-missing", f"/{OWNER}/dev/+simple/nope/"),
        ("simple-index-missing", f"/{OWNER}/nope/+simple/"),
        ("simple-user-missing", "/nouser/dev/+simple/pkg/"),
        ("file", f"{{file:{OWNER}/dev/pkg/1.0}}"),
    ):
        add(Case(f"pip-{name}", "GET", path, accept="text/html"))
        add(Case(f"json-{name}", "GET", path))


def _root_password_cases(add: Callable[[Case], None]) -> None:
    """Last: root's password set, then back to empty as tooling does, and a login with it."""
    add(Case("modify-root-password", "PATCH", "/root", "root", {"password": "pw-root-123"}))
    add(Case("reset-root-password-empty", "PATCH", "/root", "root", {"password": ""}))
    add(Case("login-root-empty-password", "POST", "/+login", "anon",
             {"user": "root", "password": ""}))


def _cases() -> list[Case]:
    cases: list[Case] = []
    for group in (_user_cases, _index_cases, _login_cases, _upload_cases, _push_cases,
                  _toxresult_cases, _remove_cases, _read_cases, _root_password_cases):
        group(cases.append)
    return cases


CASES = _cases()


# -- the requests ---------------------------------------------------------------------------
@dataclass
class Peer:
    """One server and the login tokens of the test users on it."""

    url: str
    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)
    session: requests.Session = field(default_factory=requests.Session)

    def request(
        self, method: str, path: str, who: str = "anon", body: Any = None, accept: str = JSON
    ) -> Any:
        """A JSON request as devpi-client's ``http_api`` sends it."""
        headers = {"Accept": accept, "content-type": JSON, **self.auth(who)}
        data = json.dumps(body) if body is not None else None
        return self.session.request(
            method, self.url + path, data=data, headers=headers, timeout=TIMEOUT
        )

    def auth(self, who: str) -> dict[str, str]:
        """``X-Devpi-Auth`` of ``who`` (nothing for ``anon``)."""
        if who == "anon":
            return {}
        user, secret = self.tokens[who]
        return {"X-Devpi-Auth": base64.b64encode(f"{user}:{secret}".encode()).decode()}

    def login(self, user: str, secret: str) -> None:
        reply = self.request("POST", "/+login", body={"user": user, "password": secret})
        assert reply.status_code == 200, (self.url, user, reply.text)
        self.tokens[user] = (user, reply.json()["result"]["password"])

    def upload(
        self, path: str, who: str, action: str, project: str = "pkg", variant: str = ""
    ) -> Any:
        """devpi upload's form POST (``upload.py`` in devpi-client)."""
        fields = {":action": action, "name": project, "version": "1.0", "protocol_version": "1"}
        files = None
        if action == UPLOAD:
            dist = sdist(project, variant)
            fields.update(filetype="sdist", pyversion="source", metadata_version="2.1")
            files = {"content": (dist.filename, dist.content)}
        elif action == DOCS:
            files = {"content": (f"{project}-1.0.doc.zip", make_doczip())}
        elif action == NO_ACTION:
            del fields[":action"]
        return self.session.post(
            self.url + path, data=fields, files=files, headers=self.auth(who), timeout=TIMEOUT
        )

    def file_path(self, spec: str) -> str:
        """The path of the release file of ``<user>/<index>/<project>/<version>``."""
        reply = self.request("GET", "/" + spec)
        assert reply.status_code == 200, (spec, reply.text)
        links = reply.json()["result"]["+links"]
        return next(urlsplit(x["href"]).path for x in links if x["rel"] == "releasefile")

    def setup(self) -> None:
        """The same users, indexes and releases on both servers."""
        self.login("root", "")
        for user in (*USERS, f"{OTHER}-2", f"{OWNER}-prod", *(f"victim-{w}" for w in WHO)):
            reply = self.request("PUT", f"/{user}", body={"password": password(user)})
            assert reply.status_code == 201, reply.text
        for user in USERS:
            self.login(user, password(user))
        self.tokens["bad"] = (OWNER, "not-a-token")
        self._create(OWNER, "dev")
        self._create(OWNER, "prod", volatile=False)
        self._create(OTHER, "dev")
        self._create(f"{OWNER}-prod", "prod", as_user="root", volatile=False)
        for who in WHO:
            self._create(OWNER, f"tmp-{who}")
        for project in ("pkg", *(f"del{kind}-{who}" for kind in "pvf" for who in WHO)):
            self._upload(f"/{OWNER}/dev/", project)
        self._upload(f"/{OWNER}/prod/", "pkg")
        self._upload(f"/{OWNER}/dev/", "pkg", DOCS)
        reply = self.request("DELETE", f"/{DELETED}", DELETED)
        assert reply.status_code == 200, reply.text

    def _create(self, user: str, index: str, *, as_user: str | None = None, **config: Any) -> None:
        reply = self.request("PUT", f"/{user}/{index}", as_user or user, config)
        assert reply.status_code == 200, reply.text

    def _upload(self, path: str, project: str, action: str = UPLOAD) -> None:
        reply = self.upload(path, OWNER, action, project)
        assert reply.status_code == 200, (project, reply.status_code, reply.reason)

    def run(self, case: Case) -> Answer:
        """Send ``case``; a login or password change that issues a token updates ``tokens``."""
        path = case.path
        if path.startswith("{file:"):
            path = self.file_path(path[len("{file:") : -1])
        if case.form is not None:
            reply = self.upload(path, case.who, case.form, case.project, case.variant)
        else:
            body = case.body
            if isinstance(body, dict) and body.get("password") == "TOKEN":
                body = {**body, "password": self.tokens[case.who][1]}
            reply = self.request(case.method, path, case.who, body, case.accept)
        answer = Answer.of(reply, form=case.form is not None)
        if answer.type == "userpassword" and case.who != "anon":
            user = self.tokens[case.who][0]
            if path == f"/{user}":
                self.tokens[case.who] = (user, reply.json()["result"]["password"])
        return answer


@dataclass(frozen=True)
class Answer:
    """What devpi-client looks at in a reply."""

    status: int
    type: str | None = None
    envelope: tuple[str, ...] = ()  # which of type/result/message the JSON body holds
    reason: str | None = None  # uploads: devpi upload prints it
    www_authenticate: bool = False
    message: str | None = field(default=None, compare=False)  # shown in failures, not compared

    @classmethod
    def of(cls, reply: Any, *, form: bool) -> Answer:
        body: Any = None
        if "json" in reply.headers.get("content-type", ""):
            try:
                body = reply.json()
            except ValueError:
                body = None
        envelope = tuple(k for k in ("type", "result", "message") if k in (body or {}))
        return cls(
            status=reply.status_code,
            type=body.get("type") if isinstance(body, dict) else None,
            envelope=envelope if isinstance(body, dict) else ("<not json>",),
            reason=reply.reason if form else None,
            www_authenticate="WWW-Authenticate" in reply.headers,
            message=body.get("message") if isinstance(body, dict) else reply.text[:200],
        )


def _run_all(url: str) -> dict[str, Answer]:
    peer = Peer(url)
    peer.setup()
    return {case.id: peer.run(case) for case in CASES}


# devpi-core: failed-login throttling off, as devpi-server has none (the table sends more
# wrong credentials than the default limits allow; tests/functional cover the throttling)
CORE_CONFIG = {
    "plugins": {
        "mirror": {"init_root_pypi": False},
        "passwd": {"login_failures_per_client": 0, "login_failures_per_user": 0},
    }
}


@pytest.fixture(scope="module")
def answers(tmp_path_factory) -> dict[str, dict[str, Answer]]:
    """The whole table against devpi-server and devpi-core, side by side."""
    harness = peer_harness()
    work = tmp_path_factory.mktemp("status-parity")
    with ThreadPoolExecutor(2) as pool:
        starting = pool.submit(harness.start_devpi_server, work, extra=FAST_ARGON2)
        try:
            with running_server(work / "core", CORE_CONFIG) as core:
                peer = starting.result()
                jobs = {name: pool.submit(_run_all, url)
                        for name, url in (("devpi-server", peer.url), ("devpi-core", core.url))}
                return {name: job.result() for name, job in jobs.items()}
        finally:
            starting.result().stop()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_status_and_envelope_as_devpi_server(answers, case):
    theirs = answers["devpi-server"][case.id]
    ours = answers["devpi-core"][case.id]
    where = f"{case.method} {case.path} as {case.who}"
    assert (ours.status, ours.type) == (theirs.status, theirs.type), where
    if case.form is None and case.accept == JSON:
        assert ours.envelope == theirs.envelope, where
    elif theirs.status == 401:
        # devpi upload prints "401 FAIL file_upload ...", then the reason: "Unauthorized"
        assert ours.reason == theirs.reason, where
    # 401 challenges the client to send credentials: pip, uv and twine retry with them
    assert ours.www_authenticate == theirs.www_authenticate, where
