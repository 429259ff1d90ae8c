"""devpi-client against devpi-core: ``devpi upload`` (built from a project, existing files, docs).

Builds run offline: ``--no-isolation`` uses the venv's setuptools, ``--with-docs`` the venv's
Sphinx. Uploaded docs are read back unpacked from ``+doc/`` and checked for zip-slip and bombs.
"""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from devpi_core.testing.devpiclient import (
    write_project,
)
from devpi_core.testing.dists import DistSpec, make_sdist, make_wheel

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """sdists and wheels of ``built-pkg`` 1.0 and 2.0 (generated, not built: the build path
    has its own tests), made once for the upload-by-path tests."""
    base = tmp_path_factory.mktemp("built")
    (base / "dist").mkdir()
    for version in ("1.0", "2.0"):
        spec = DistSpec("built-pkg", version)
        make_sdist(spec).write(base / "dist")
        make_wheel(spec).write(base / "dist")
    return base / "dist"


def _files(api, fullindex, project, version, rel="releasefile"):
    verdata = api.result(f"{fullindex}/{project}/{version}")
    return sorted(
        link["href"].rsplit("/", 1)[-1] for link in verdata["+links"] if link["rel"] == rel
    )


def _doczip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


# -- building from a project directory ------------------------------------------------------
def test_upload_builds_sdist_and_wheel(user, devpi, api, tmp_path):
    project = write_project(tmp_path / "proj", "hello-build", "1.0")
    result = devpi("upload", "--no-isolation", cwd=project, timeout=180)
    assert "-m build --no-isolation" in result.out
    assert (
        "built: dist/hello-build-1.0.tar.gz" in result.out or "hello-build-1.0.tar.gz" in result.out
    )
    for name in ("hello-build-1.0.tar.gz", "hello_build-1.0-py3-none-any.whl"):
        assert f"file_upload of {name} to {user.url}/{user.fullindex}/" in result.out
    assert _files(api, user.fullindex, "hello-build", "1.0") == [
        "hello-build-1.0.tar.gz",
        "hello_build-1.0-py3-none-any.whl",
    ]
    verdata = api.result(f"{user.fullindex}/hello-build/1.0")
    assert verdata["summary"] == "hello-build for devpi-client tests"
    assert verdata["author"] == "Tester"
    assert api.result(user.fullindex)["projects"] == ["hello-build"]


@pytest.mark.parametrize(
    ("options", "expected", "warning"),
    [
        (["--sdist"], ["formats-pkg-1.0.tar.gz"], None),
        (["--wheel"], ["formats_pkg-1.0-py3-none-any.whl"], None),
        (
            ["--formats", "bdist_wheel"],
            ["formats_pkg-1.0-py3-none-any.whl"],
            "The --formats option is deprecated, replace it with --wheel",
        ),
    ],
)
def test_upload_formats(user, devpi, api, tmp_path, options, expected, warning):
    project = write_project(tmp_path / "proj", "formats-pkg", "1.0")
    result = devpi("upload", "--no-isolation", *options, cwd=project, timeout=180)
    if warning:
        assert warning in result.out
    assert _files(api, user.fullindex, "formats-pkg", "1.0") == expected


def test_upload_with_docs_serves_them_unpacked(user, devpi, api, tmp_path):
    project = write_project(tmp_path / "proj", "doc-pkg", "1.0", docs=True)
    result = devpi("upload", "--no-isolation", "--with-docs", cwd=project, timeout=180)
    assert "sphinx-build -E doc build" in result.out
    assert f"doc_upload of doc-pkg-1.0.doc.zip to {user.url}/{user.fullindex}/" in result.out
    assert _files(api, user.fullindex, "doc-pkg", "1.0") == [
        "doc-pkg-1.0.tar.gz",
        "doc_pkg-1.0-py3-none-any.whl",
    ]
    assert _files(api, user.fullindex, "doc-pkg", "1.0", rel="doczip") == ["doc-pkg-1.0.doc.zip"]
    for version in ("1.0", "latest", "stable"):
        page = api.get(
            f"{user.fullindex}/doc-pkg/{version}/+doc/index.html", headers={"Accept": "text/html"}
        )
        assert page.status_code == 200, version
        assert page.headers["Content-Type"].startswith("text/html")
        assert "Documentation of doc-pkg 1.0." in page.text
    # the directory URL serves its index.html; assets of the Sphinx build are there too
    assert "doc-pkg" in api.get(f"{user.fullindex}/doc-pkg/1.0/+doc/").text
    assert api.status(f"{user.fullindex}/doc-pkg/1.0/+doc/search.html") == 200
    assert api.status(f"{user.fullindex}/doc-pkg/1.0/+doc/missing.html") == 404


def test_upload_only_docs(user, devpi, api, tmp_path):
    project = write_project(tmp_path / "proj", "onlydoc-pkg", "2.0", docs=True)
    result = devpi("upload", "--no-isolation", "--only-docs", cwd=project, timeout=180)
    assert "file_upload" not in result.out
    assert f"doc_upload of onlydoc-pkg-2.0.doc.zip to {user.url}/{user.fullindex}/" in result.out
    assert _files(api, user.fullindex, "onlydoc-pkg", "2.0") == []
    assert _files(api, user.fullindex, "onlydoc-pkg", "2.0", rel="doczip") == [
        "onlydoc-pkg-2.0.doc.zip"
    ]
    assert (
        "Documentation of onlydoc-pkg 2.0."
        in api.get(f"{user.fullindex}/onlydoc-pkg/2.0/+doc/").text
    )


# -- uploading existing files ---------------------------------------------------------------
def test_upload_existing_files(user, devpi, api, built):
    paths = [str(built / "built_pkg-1.0.tar.gz"), str(built / "built_pkg-1.0-py3-none-any.whl")]
    result = devpi("upload", *paths)
    assert f"file_upload of built_pkg-1.0.tar.gz to {user.url}/{user.fullindex}/" in result.out
    assert _files(api, user.fullindex, "built-pkg", "1.0") == [
        "built_pkg-1.0-py3-none-any.whl",
        "built_pkg-1.0.tar.gz",
    ]
    # the stored files are byte-identical with the uploaded ones
    link = api.result(f"{user.fullindex}/built-pkg/1.0")["+links"][0]
    content = api.get(link["href"], headers={"Accept": "*/*"}).content
    assert content == (built / link["href"].rsplit("/", 1)[-1]).read_bytes()


def test_upload_from_dir_only_latest(user, devpi, api, built):
    result = devpi("upload", "--from-dir", "--only-latest", str(built))
    assert "built_pkg-1.0" not in result.out
    assert api.result(user.fullindex)["projects"] == ["built-pkg"]
    assert sorted(api.result(f"{user.fullindex}/built-pkg")) == ["2.0"]
    devpi("upload", "--from-dir", str(built))
    assert sorted(api.result(f"{user.fullindex}/built-pkg")) == ["1.0", "2.0"]


def test_upload_directory_without_from_dir_fails(user, devpi, built):
    result = devpi("upload", str(built), code=1)
    assert "is a directory but --from-dir not specified" in result.out


def test_upload_dry_run_changes_nothing(user, devpi, api, built):
    result = devpi("upload", "--dry-run", str(built / "built_pkg-2.0-py3-none-any.whl"))
    assert (
        f"skipped: file_upload of built_pkg-2.0-py3-none-any.whl to {user.url}/{user.fullindex}/"
        in result.out
    )
    assert api.result(user.fullindex)["projects"] == []


def test_upload_to_other_index_with_index_option(user, devpi, api, built):
    devpi("index", "-c", "other")
    devpi("upload", "--index", f"{user.name}/other", str(built / "built_pkg-1.0-py3-none-any.whl"))
    assert api.result(f"{user.name}/other")["projects"] == ["built-pkg"]
    assert api.result(user.fullindex)["projects"] == []


def test_non_volatile_reupload(user, devpi, api, tmp_path):
    devpi("index", "dev", "volatile=False")
    first = make_wheel(DistSpec("frozen", "1.0")).write(tmp_path)
    devpi("upload", str(first))
    # the identical file again is accepted (devpi-server answers 200 too)
    devpi("upload", str(first))
    changed_dir = tmp_path / "changed"
    changed_dir.mkdir()
    changed = make_wheel(DistSpec("frozen", "1.0", summary="different")).write(changed_dir)
    result = devpi("upload", str(changed), code=1)
    assert f"409 FAIL file_upload of {changed.name} to {user.url}/{user.fullindex}/" in result.out
    assert f"{changed.name} already exists in non-volatile index" in result.out
    assert f"POST to {user.url}/{user.fullindex}/ FAILED" in result.out
    link = api.result(f"{user.fullindex}/frozen/1.0")["+links"][0]
    assert link["hashes"]["sha256"] == make_wheel(DistSpec("frozen", "1.0")).sha256


def test_volatile_reupload_replaces(user, devpi, api, tmp_path):
    devpi("upload", str(make_wheel(DistSpec("fluid", "1.0")).write(tmp_path)))
    (tmp_path / "new").mkdir()
    replacement = make_wheel(DistSpec("fluid", "1.0", summary="second"))
    devpi("upload", str(replacement.write(tmp_path / "new")))
    link = api.result(f"{user.fullindex}/fluid/1.0")["+links"][0]
    assert link["hashes"]["sha256"] == replacement.sha256
    assert [entry["what"] for entry in link["log"]] == ["overwrite", "upload"]


def test_upload_anonymous_is_refused(user, devpi, api, built):
    devpi("logout")
    result = devpi("upload", str(built / "built_pkg-1.0-py3-none-any.whl"), code=1)
    assert "401 FAIL file_upload of built_pkg-1.0-py3-none-any.whl" in result.out
    assert api.result(user.fullindex)["projects"] == []


# -- documentation zips ---------------------------------------------------------------------
def test_upload_doczip_files_and_version_aliases(user, devpi, api, tmp_path):
    devpi("upload", str(make_wheel(DistSpec("aliased", "1.0")).write(tmp_path)))
    devpi("upload", str(make_wheel(DistSpec("aliased", "2.0b1")).write(tmp_path)))
    for version in ("1.0", "2.0b1"):
        path = tmp_path / f"aliased-{version}.doc.zip"
        path.write_bytes(_doczip({"index.html": f"<h1>aliased {version}</h1>".encode()}))
        assert f"doc_upload of {path.name}" in devpi("upload", str(path)).out
    assert "aliased 2.0b1" in api.get(f"{user.fullindex}/aliased/latest/+doc/index.html").text
    assert "aliased 1.0" in api.get(f"{user.fullindex}/aliased/stable/+doc/index.html").text
    assert "aliased 1.0" in api.get(f"{user.fullindex}/aliased/1.0/+doc/").text
    assert api.status(f"{user.fullindex}/aliased/3.0/+doc/index.html") == 404


def test_upload_doc_tarball_is_repackaged(user, devpi, api, tmp_path):
    devpi("upload", str(make_wheel(DistSpec("tarred", "1.0")).write(tmp_path)))
    path = tmp_path / "tarred-1.0.doc.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        data = b"<h1>from a tarball</h1>"
        info = tarfile.TarInfo("index.html")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    result = devpi("upload", str(path))
    assert "repackaged tarred-1.0.doc.tar.gz to tarred-1.0.doc.zip" in result.out
    assert "from a tarball" in api.get(f"{user.fullindex}/tarred/1.0/+doc/index.html").text


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"../escape.html": b"x"}, "unsafe path in documentation zip"),
        ({"/etc/absolute.html": b"x"}, "unsafe path in documentation zip"),
        ({"index.html": b"ok", "bomb.bin": b"\0" * (4 << 20)}, "compressed suspiciously well"),
    ],
)
def test_unsafe_doczip_is_refused(user, devpi, api, tmp_path, entries, message):
    devpi("upload", str(make_wheel(DistSpec("unsafe-docs", "1.0")).write(tmp_path)))
    path = tmp_path / "unsafe-docs-1.0.doc.zip"
    path.write_bytes(_doczip(entries))
    result = devpi("upload", str(path), code=1)
    assert f"400 FAIL doc_upload of {path.name}" in result.out
    assert message in result.out
    assert _files(api, user.fullindex, "unsafe-docs", "1.0", rel="doczip") == []
    assert api.status(f"{user.fullindex}/unsafe-docs/1.0/+doc/index.html") == 404


def test_doc_paths_cannot_escape(user, devpi, api, tmp_path):
    devpi("upload", str(make_wheel(DistSpec("contained", "1.0")).write(tmp_path)))
    path = tmp_path / "contained-1.0.doc.zip"
    path.write_bytes(_doczip({"index.html": b"<h1>in</h1>", "sub/page.html": b"<p>sub</p>"}))
    devpi("upload", str(path))
    base = f"{user.fullindex}/contained/1.0/+doc"
    assert api.get(f"{base}/sub/page.html").text == "<p>sub</p>"
    for attempt in ("sub/../../../../etc/passwd", "%2e%2e/%2e%2e/secret", "..%2f..%2fserverdir"):
        response = api.get(f"{base}/{attempt}")
        assert response.status_code in (400, 404), attempt
        assert "root:" not in response.text
