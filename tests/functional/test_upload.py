"""The legacy upload API (``:action`` file_upload, submit, doc_upload) through WebTest."""

from __future__ import annotations

import base64
import hashlib
import types
from urllib.parse import urljoin

import pytest

from devpi_core import hookimpl, services
from devpi_core.testing.dists import DistSpec, make_doczip, make_sdist, make_wheel

SPEC = DistSpec(
    "Hello_World", "1.0", requires_python=">=3.8", requires_dist=["six>=1.0"], summary="says hello"
)


def twine_form(dist, spec: DistSpec, **extra) -> list[tuple[str, str]]:
    """The fields twine sends with a file."""
    fields = [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("metadata_version", "2.1"),
        ("name", spec.name),
        ("version", spec.version),
        ("summary", spec.summary),
        ("filetype", "bdist_wheel" if dist.filename.endswith(".whl") else "sdist"),
        ("pyversion", "py3" if dist.filename.endswith(".whl") else "source"),
        ("classifiers", "Programming Language :: Python :: 3"),
        ("classifiers", "License :: OSI Approved :: MIT License"),
        ("sha256_digest", dist.sha256),
        ("blake2_256_digest", hashlib.blake2b(dist.content, digest_size=32).hexdigest()),
    ]
    if spec.requires_python:
        fields.append(("requires_python", spec.requires_python))
    fields += [("requires_dist", req) for req in spec.requires_dist]
    overrides = set(extra)
    return [(k, v) for k, v in fields if k not in overrides] + list(extra.items())


def post(client, fullname, fields, dist=None, *, filename=None, status=200, headers=None):
    files = [("content", filename or dist.filename, dist.content)] if dist is not None else []
    hdrs = client._headers(json_accept=False)
    hdrs.update(headers or {})
    return client.app.post(
        f"/{fullname}/",
        params=fields,
        upload_files=files,
        headers=hdrs,
        status=status,
        expect_errors=True,
    )


@pytest.fixture
def alice(client):
    client.create_and_login("alice")
    client.create_index("alice/dev")
    return client


def version_json(client, fullname, project, version):
    return client.get_json(f"/{fullname}/{project}/{version}")["result"]


def test_twine_style_upload_stores_metadata_and_file(alice):
    wheel = make_wheel(SPEC)
    response = post(alice, "alice/dev", twine_form(wheel, SPEC), wheel)
    assert response.status_int == 200
    assert response.body == b""
    data = version_json(alice, "alice/dev", "hello-world", "1.0")
    assert data["name"] == "Hello_World"
    assert data["summary"] == "says hello"
    assert data["requires_python"] == ">=3.8"
    assert data["requires_dist"] == ["six>=1.0"]
    assert data["classifiers"] == [
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: MIT License",
    ]
    [link] = data["+links"]
    assert link["rel"] == "releasefile"
    assert link["hash_spec"] == f"sha256={wheel.sha256}"
    assert link["href"].endswith(
        f"/alice/dev/+f/{wheel.sha256[:3]}/{wheel.sha256[3:16]}/{wheel.filename}"
    )
    assert link["log"][0]["what"] == "upload"
    assert link["log"][0]["who"] == "alice"
    assert link["log"][0]["dst"] == "alice/dev"
    assert len(link["log"][0]["when"]) == 6
    assert alice.app.get(link["href"]).body == wheel.content


def test_metadata_missing_from_the_form_comes_from_the_archive(alice):
    # devpi-client and ``setup.py upload`` always send metadata; a bare client need not
    for dist in (
        make_wheel(SPEC),
        make_sdist(DistSpec("hello-world", "2.0", summary="from pkg-info")),
    ):
        form = [
            (":action", "file_upload"),
            ("name", "hello-world"),
            ("version", "1.0" if dist.filename.endswith(".whl") else "2.0"),
        ]
        post(alice, "alice/dev", form, dist)
    assert version_json(alice, "alice/dev", "hello-world", "1.0")["summary"] == "says hello"
    assert version_json(alice, "alice/dev", "hello-world", "1.0")["requires_dist"] == ["six>=1.0"]
    assert version_json(alice, "alice/dev", "hello-world", "2.0")["summary"] == "from pkg-info"


def test_wheel_core_metadata_is_served(alice):
    wheel = make_wheel(SPEC)
    post(alice, "alice/dev", twine_form(wheel, SPEC), wheel)
    [entry] = alice.simple("alice/dev", "hello-world", json_api=True).json["files"]
    expected = hashlib.sha256(wheel.metadata).hexdigest()
    assert entry["core-metadata"] == {"sha256": expected}
    page = alice.app.get(urljoin("/alice/dev/+simple/hello-world/", entry["url"]) + ".metadata")
    assert page.body == wheel.metadata
    assert hashlib.sha256(page.body).hexdigest() == expected


def test_sdist_has_no_core_metadata(alice):
    spec = DistSpec("plain", "1.0")
    sdist = make_sdist(spec)
    post(alice, "alice/dev", twine_form(sdist, spec), sdist)
    [entry] = alice.simple("alice/dev", "plain", json_api=True).json["files"]
    assert "core-metadata" not in entry


def test_basic_auth_with_password_and_token(client):
    client.create_user("alice", "secret")
    token = client.login("alice", "secret")
    client.create_index("alice/dev")
    client.logout()
    for n, secret in enumerate(("secret", token)):
        spec = DistSpec("pkg", f"1.{n}")
        wheel = make_wheel(spec)
        auth = base64.b64encode(f"alice:{secret}".encode()).decode()
        post(
            client,
            "alice/dev",
            twine_form(wheel, spec),
            wheel,
            headers={"Authorization": f"Basic {auth}"},
        )
    assert len(client.simple_filenames("alice/dev", "pkg")) == 2


def test_anonymous_upload_gets_basic_challenge(alice):
    wheel = make_wheel(SPEC)
    alice.logout()
    response = post(alice, "alice/dev", twine_form(wheel, SPEC), wheel, status=401)
    assert response.headers["WWW-Authenticate"] == 'Basic realm="pypi"'


def test_upload_acl(client):
    client.create_user("bob", "2")
    client.create_and_login("alice")
    client.create_index("alice/dev")
    wheel = make_wheel(SPEC)
    client.login("bob", "2")
    response = post(client, "alice/dev", twine_form(wheel, SPEC), wheel, status=403)
    assert "no permission" in response.status
    client.login("alice")
    client.modify_index("alice/dev", ["acl_upload+=:authenticated:"])
    client.login("bob", "2")
    post(client, "alice/dev", twine_form(wheel, SPEC), wheel, status=200)


def test_upload_to_unknown_index_is_404(alice):
    wheel = make_wheel(SPEC)
    post(alice, "alice/nothere", twine_form(wheel, SPEC), wheel, status=404)


def test_volatile_index_replaces_file_and_logs_overwrite(alice):
    first = make_wheel(SPEC)
    second = make_wheel(SPEC, padding=100)
    assert first.filename == second.filename
    post(alice, "alice/dev", twine_form(first, SPEC), first)
    post(alice, "alice/dev", twine_form(second, SPEC), second)
    [link] = version_json(alice, "alice/dev", "hello-world", "1.0")["+links"]
    assert link["hash_spec"] == f"sha256={second.sha256}"
    # devpi-server: the replaced file's log goes with it, the new one starts with "overwrite"
    assert [entry["what"] for entry in link["log"]] == ["overwrite", "upload"]
    assert link["log"][0]["count"] == 1
    assert link["log"][0]["who"] is None
    assert "dst" not in link["log"][0]
    services.blob_collector(alice.app.app.registry).sweep(grace=0)
    blobs = set(services.blob_store(alice.app.app.registry).iter_blobs())
    assert first.sha256 not in blobs
    assert second.sha256 in blobs
    third = make_wheel(SPEC, padding=200)
    post(alice, "alice/dev", twine_form(third, SPEC), third)
    [link] = version_json(alice, "alice/dev", "hello-world", "1.0")["+links"]
    log = [(e["what"], e.get("count")) for e in link["log"]]
    assert log == [("overwrite", 2), ("upload", None)]
    # the same content again is an overwrite too (devpi-server)
    post(alice, "alice/dev", twine_form(third, SPEC), third)
    [link] = version_json(alice, "alice/dev", "hello-world", "1.0")["+links"]
    log = [(e["what"], e.get("count")) for e in link["log"]]
    assert log == [("overwrite", 3), ("upload", None)]
    assert third.sha256 in set(services.blob_store(alice.app.app.registry).iter_blobs())


def test_non_volatile_index_refuses_different_file(alice):
    alice.create_index("alice/prod", volatile=False)
    first = make_wheel(SPEC)
    post(alice, "alice/prod", twine_form(first, SPEC), first)
    again = post(alice, "alice/prod", twine_form(first, SPEC), first, status=200)
    assert again.status == "200 Upload of identical file to non volatile index."
    other = make_wheel(SPEC, padding=100)
    response = post(alice, "alice/prod", twine_form(other, SPEC), other, status=409)
    assert response.status == f"409 {first.filename} already exists in non-volatile index"
    [link] = version_json(alice, "alice/prod", "hello-world", "1.0")["+links"]
    assert link["hash_spec"] == f"sha256={first.sha256}"
    services.blob_collector(alice.app.app.registry).sweep(grace=0)
    assert other.sha256 not in set(services.blob_store(alice.app.app.registry).iter_blobs())


def test_submit_registers_metadata_without_file(alice):
    fields = [
        (":action", "submit"),
        ("name", "regonly"),
        ("version", "0.1"),
        ("summary", "S"),
        ("classifiers", "A"),
        ("classifiers", "B"),
    ]
    post(alice, "alice/dev", fields)
    data = version_json(alice, "alice/dev", "regonly", "0.1")
    assert data["summary"] == "S"
    assert data["classifiers"] == ["A", "B"]
    assert data["+links"] == []
    post(alice, "alice/dev", [(":action", "submit"), ("name", "regonly"), ("version", "0.1")])
    assert version_json(alice, "alice/dev", "regonly", "0.1")["summary"] == ""


def test_register_action_is_refused(alice):
    response = post(
        alice, "alice/dev", [(":action", "register"), ("name", "x"), ("version", "1")], status=400
    )
    assert "register" in response.json["message"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([("name", "x"), ("version", "1")], ":action"),
        ([(":action", "fly"), ("name", "x"), ("version", "1")], "fly"),
        ([(":action", "submit"), ("version", "1")], "name"),
        ([(":action", "submit"), ("name", "x")], "version"),
        ([(":action", "submit"), ("name", "-bad-"), ("version", "1")], "invalid project name"),
        ([(":action", "submit"), ("name", "x"), ("version", "1 0")], "invalid version"),
        ([(":action", "file_upload"), ("name", "x"), ("version", "1")], "content"),
    ],
)
def test_bad_forms_are_400(alice, fields, message):
    response = post(alice, "alice/dev", fields, status=400)
    assert message in response.json["message"]


def test_doc_upload_and_serving(alice):
    wheel = make_wheel(SPEC)
    post(alice, "alice/dev", twine_form(wheel, SPEC), wheel)
    doczip = make_doczip({"index.html": "<h1>Hello docs</h1>", "api/mod.html": "<p>api</p>"})

    class Doc:
        filename = "hello-world-1.0.doc.zip"
        content = doczip

    post(alice, "alice/dev", [(":action", "doc_upload"), ("name", "Hello_World")], Doc)
    links = version_json(alice, "alice/dev", "hello-world", "1.0")["+links"]
    assert sorted(link["rel"] for link in links) == ["doczip", "releasefile"]
    assert b"Hello docs" in alice.app.get("/alice/dev/hello-world/1.0/+doc/").body
    assert alice.app.get("/alice/dev/hello-world/latest/+doc/api/mod.html").body == b"<p>api</p>"
    alice.app.get("/alice/dev/hello-world/1.0/+doc/nothere.html", status=404)
    assert "doczip" not in str(alice.simple("alice/dev", "hello-world").text)


def test_doc_upload_without_any_version_is_400(alice):
    class Doc:
        filename = "x.zip"
        content = make_doczip()

    response = post(
        alice, "alice/dev", [(":action", "doc_upload"), ("name", "NoVer")], Doc, status=400
    )
    # devpi-server's words, which devpi-client prints
    assert response.json["message"] == (
        "doczip has no version and 'nover' has no releases to derive one from"
    )


def test_doc_upload_with_a_version_registers_it_as_devpi_does(alice):
    class Doc:
        filename = "docsonly-2.0.doc.zip"
        content = make_doczip({"index.html": "<h1>only docs</h1>"})

    post(
        alice,
        "alice/dev",
        [(":action", "doc_upload"), ("name", "DocsOnly"), ("version", "2.0")],
        Doc,
    )
    verdata = version_json(alice, "alice/dev", "docsonly", "2.0")
    # devpi-server registers the version with every metadata key (empty)
    assert verdata["name"] == "DocsOnly"
    assert verdata["summary"] == ""
    assert verdata["classifiers"] == []
    assert [link["rel"] for link in verdata["+links"]] == ["doczip"]
    assert b"only docs" in alice.app.get("/alice/dev/docsonly/2.0/+doc/").body


def test_doc_upload_must_be_a_zip(alice):
    class Doc:
        filename = "x.zip"
        content = b"not a zip at all"

    post(
        alice,
        "alice/dev",
        [(":action", "doc_upload"), ("name", "p"), ("version", "1")],
        Doc,
        status=400,
    )
    alice.get("/alice/dev/p/1", status=404)


def test_digest_mismatch_is_refused(alice):
    wheel = make_wheel(SPEC)
    form = twine_form(wheel, SPEC, sha256_digest="0" * 64)
    response = post(alice, "alice/dev", form, wheel, status=400)
    assert "sha256_digest" in response.json["message"]
    alice.simple("alice/dev", "hello-world", status=404)


def test_upload_event_reaches_plugins(make_app):
    seen = []
    module = types.ModuleType("recorder")

    def record(event):
        seen.append(event)

    module.devpi_on_upload = hookimpl(record)
    client = make_app(modules=(("recorder", module),))
    client.create_and_login("alice")
    client.create_index("alice/dev")
    wheel = make_wheel(SPEC)
    post(client, "alice/dev", twine_form(wheel, SPEC), wheel)
    [event] = seen
    assert (event.index, event.project, event.version, event.filename, event.username) == (
        "alice/dev",
        "hello-world",
        "1.0",
        wheel.filename,
        "alice",
    )
