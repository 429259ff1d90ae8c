"""devpi-client against devpi-core: ``devpi push`` to another index and to another server.

``push NAME==VER pypi:REPO`` reads the credentials from ``$HOME/.pypirc``; the "external"
repository is a second devpi-core server, so the push crosses a real HTTP boundary.
"""

from __future__ import annotations

import io
import zipfile

import pytest

from devpi_core.testing.devpiclient import PASSWORD, DevpiCLI, ServerAPI, running_server, setup_user
from devpi_core.testing.dists import DistSpec, make_sdist, make_wheel

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def external(tmp_path_factory):
    """A second server standing in for a public index that ``pypi:REPO`` pushes to."""
    with running_server(tmp_path_factory.mktemp("external")) as process:
        yield process


def _doczip(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("index.html", text)
    return buffer.getvalue()


def _release(devpi, tmp_path, name="pushed", version="1.0", *, docs=True):
    """Upload an sdist, a wheel and (optionally) docs of ``name`` ``version``."""
    spec = DistSpec(name, version, summary=f"{name} summary")
    files = [make_sdist(spec).write(tmp_path), make_wheel(spec).write(tmp_path)]
    if docs:
        doc = tmp_path / f"{name}-{version}.doc.zip"
        doc.write_bytes(_doczip(f"<h1>{name} {version} docs</h1>"))
        files.append(doc)
    devpi("upload", *map(str, files))
    return files


def _rels(api, path):
    return sorted(
        (link["rel"], link["href"].rsplit("/", 1)[-1]) for link in api.result(path)["+links"]
    )


def _actions(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines() if line.startswith("   ")]


def test_push_to_own_index(user, devpi, api, tmp_path):
    _release(devpi, tmp_path)
    devpi("index", "-c", "prod", "volatile=False")
    result = devpi("push", "pushed==1.0", f"{user.name}/prod")
    actions = _actions(result.stdout)
    assert ["200", "register", "pushed", "1.0", "->", f"{user.name}/prod"] in actions
    assert ["200", "store_doczip", "pushed", "1.0", "->", f"{user.name}/prod"] in actions
    stored = sorted(row[2].rsplit("/", 1)[-1] for row in actions if row[1] == "store_releasefile")
    assert stored == ["pushed-1.0-py3-none-any.whl", "pushed-1.0.tar.gz"]
    assert all(
        row[2].startswith(f"{user.name}/prod/+f/")
        for row in actions
        if row[1] == "store_releasefile"
    )
    assert _rels(api, f"{user.name}/prod/pushed/1.0") == _rels(api, f"{user.fullindex}/pushed/1.0")
    verdata = api.result(f"{user.name}/prod/pushed/1.0")
    assert verdata["summary"] == "pushed summary"
    log = verdata["+links"][0]["log"]
    assert [entry["what"] for entry in log] == ["upload", "push"]
    assert log[-1]["src"] == user.fullindex
    assert log[-1]["dst"] == f"{user.name}/prod"
    docs = api.get(f"{user.name}/prod/pushed/1.0/+doc/index.html")
    assert docs.status_code == 200
    assert "pushed 1.0 docs" in docs.text


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("--no-docs", ["releasefile", "releasefile"]),
        ("--only-docs", ["doczip"]),
    ],
)
def test_push_docs_options(user, devpi, api, tmp_path, option, expected):
    _release(devpi, tmp_path)
    devpi("index", "-c", "prod")
    devpi("push", option, "pushed==1.0", f"{user.name}/prod")
    assert [rel for rel, _name in _rels(api, f"{user.name}/prod/pushed/1.0")] == expected


def test_push_old_style_spec_and_index_option(user, devpi, api, tmp_path):
    devpi("index", "-c", "source")
    devpi("use", f"{user.name}/source")
    _release(devpi, tmp_path, docs=False)
    devpi("use", user.fullindex)
    result = devpi("push", "--index", f"{user.name}/source", "pushed-1.0", user.fullindex)
    assert "Old style package specification is deprecated" in result.out
    assert len(_rels(api, f"{user.fullindex}/pushed/1.0")) == 2


def test_push_after_volatile_overwrite(user, devpi, api, tmp_path):
    """A re-uploaded wheel with the same METADATA keeps its PEP 658 metadata file pushable."""
    devpi("upload", str(make_wheel(DistSpec("rebuilt", "1.0")).write(tmp_path)))
    (tmp_path / "again").mkdir()
    rebuilt = make_wheel(DistSpec("rebuilt", "1.0", module_code="VALUE = 2\n"))
    devpi("upload", str(rebuilt.write(tmp_path / "again")))
    devpi("index", "-c", "prod")
    devpi("push", "rebuilt==1.0", f"{user.name}/prod")
    link = api.result(f"{user.name}/prod/rebuilt/1.0")["+links"][0]
    assert link["hashes"]["sha256"] == rebuilt.sha256
    metadata = api.get(link["href"] + ".metadata", headers={"Accept": "*/*"})
    assert metadata.status_code == 200
    assert b"Name: rebuilt" in metadata.content


def test_push_carries_tox_results(user, devpi, api, tmp_path):
    _release(devpi, tmp_path, docs=False)
    sdist = next(
        link
        for link in api.result(f"{user.fullindex}/pushed/1.0")["+links"]
        if link["href"].endswith(".tar.gz")
    )
    posted = api.request(
        "POST",
        sdist["href"],
        json={"testenvs": {"py": {"test": []}}, "host": "h", "platform": "linux", "installpkg": {}},
    )
    assert posted.status_code == 200, posted.text
    devpi("index", "-c", "prod")
    result = devpi("push", "pushed==1.0", f"{user.name}/prod")
    assert any(row[1] == "store_toxresult" for row in _actions(result.stdout))
    links = api.result(f"{user.name}/prod/pushed/1.0")["+links"]
    toxresult = next(link for link in links if link["rel"] == "toxresult")
    assert toxresult["for_href"].startswith(f"{user.url}/{user.name}/prod/+f/")
    assert toxresult["for_href"].endswith("/pushed-1.0.tar.gz")


def test_push_errors_print_server_message(user, devpi, tmp_path):
    _release(devpi, tmp_path, docs=False)
    result = devpi("push", "pushed==9.9", user.fullindex, code=1)
    assert f"PUSH {user.url}/{user.fullindex}" in result.out
    assert "400 Bad Request: no version '9.9' of 'pushed'" in result.out
    result = devpi("push", "pushed==1.0", "nobody/nothing", code=1)
    assert "404 Not Found: no index 'nobody/nothing'" in result.out
    result = devpi("push", "pushed>=1.0", f"{user.name}/x", code=1)
    assert "The release specification needs to be of this form: name==version" in result.out


def test_push_without_upload_permission(server, user, devpi, tmp_path):
    _release(devpi, tmp_path, docs=False)
    other = setup_user(DevpiCLI.create(tmp_path / "other"), server.url)
    result = devpi("push", "pushed==1.0", other.fullindex, code=1)
    assert f"PUSH {server.url}/{user.fullindex}" in result.out
    assert (
        f"401 Unauthorized: user '{user.name}' cannot upload to '{other.fullindex}'" in result.out
    )


def test_push_conflict_on_non_volatile_target(user, devpi, api, tmp_path):
    _release(devpi, tmp_path, docs=False)
    devpi("index", "-c", "prod", "volatile=False")
    devpi("use", f"{user.name}/prod")
    (tmp_path / "other").mkdir()
    devpi(
        "upload",
        str(make_wheel(DistSpec("pushed", "1.0", summary="clash")).write(tmp_path / "other")),
    )
    devpi("use", user.fullindex)
    result = devpi("push", "pushed==1.0", f"{user.name}/prod", code=1)
    assert (
        "409 Conflict: pushed-1.0-py3-none-any.whl already exists in non-volatile index"
        in result.out
    )
    assert [name for _rel, name in _rels(api, f"{user.name}/prod/pushed/1.0")] == [
        "pushed-1.0-py3-none-any.whl"
    ]


# -- push to another server -----------------------------------------------------------------
def _pypirc(devpi: DevpiCLI, url: str, username: str, password: str) -> None:
    (devpi.home / ".pypirc").write_text(
        "[distutils]\nindex-servers = target\n\n"
        f"[target]\nrepository = {url}\nusername = {username}\npassword = {password}\n"
    )


def test_push_to_external_repository(server, external, user, devpi, tmp_path):
    _release(devpi, tmp_path)
    target = setup_user(DevpiCLI.create(tmp_path / "target"), external.url)
    _pypirc(devpi, f"{external.url}/{target.fullindex}/", target.name, PASSWORD)
    result = devpi("push", "pushed==1.0", "pypi:target")
    assert f"using pypirc {devpi.home / '.pypirc'}" in result.out
    actions = _actions(result.stdout)
    uploads = [row for row in actions if row[1] == "upload"]
    assert len(uploads) == 2
    assert all(row[0] == "200" for row in uploads)
    assert actions[-1][:3] == ["200", "docfile", "pushed"]
    remote = ServerAPI(external.url)
    try:
        verdata = remote.result(f"{target.fullindex}/pushed/1.0")
        assert sorted(link["href"].rsplit("/", 1)[-1] for link in verdata["+links"]) == [
            "pushed-1.0-py3-none-any.whl",
            "pushed-1.0.doc.zip",
            "pushed-1.0.tar.gz",
        ]
        assert verdata["summary"] == "pushed summary"
        assert (
            "pushed 1.0 docs" in remote.get(f"{target.fullindex}/pushed/1.0/+doc/index.html").text
        )
    finally:
        remote.close()


def test_push_to_external_with_register_project(external, user, devpi, tmp_path):
    _release(devpi, tmp_path, docs=False)
    target = setup_user(DevpiCLI.create(tmp_path / "target"), external.url)
    _pypirc(devpi, f"{external.url}/{target.fullindex}/", target.name, PASSWORD)
    result = devpi("push", "--register-project", "--no-docs", "pushed==1.0", "pypi:target")
    actions = _actions(result.stdout)
    assert actions[0][:4] == ["200", "register", "pushed", "1.0"]
    assert not [row for row in actions if row[1] == "docfile"]


def test_push_to_external_with_wrong_password_fails(external, user, devpi, tmp_path):
    _release(devpi, tmp_path, docs=False)
    target = setup_user(DevpiCLI.create(tmp_path / "target"), external.url)
    _pypirc(devpi, f"{external.url}/{target.fullindex}/", target.name, "wrong-password")
    result = devpi("push", "pushed==1.0", "pypi:target", code=1)
    assert any(row[0] == "401" and row[1] == "upload" for row in _actions(result.stdout))
    assert "Failure during upload" in result.out
    assert ServerAPI(external.url).status(f"{target.fullindex}/pushed") == 404


def test_push_external_without_pypirc_section(user, devpi, tmp_path):
    _release(devpi, tmp_path, docs=False)
    missing = devpi("push", "pushed==1.0", "pypi:target", code=1)
    assert f"no pypirc file found at: {devpi.home / '.pypirc'}" in missing.out
    _pypirc(devpi, "http://127.0.0.1:9/", "x", "y")
    result = devpi("push", "pushed==1.0", "pypi:elsewhere", code=1)
    assert "Error while trying to read section 'elsewhere'" in result.out
