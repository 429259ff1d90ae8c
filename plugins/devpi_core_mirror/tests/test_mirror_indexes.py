"""Mirror indexes as configured objects: keys, credentials, stages on top, deletion, init."""

from __future__ import annotations

import base64

import pytest

from devpi_core import hookimpl, services
from devpi_core.testing.upstream import FakeUpstream
from devpi_core_mirror.tests.conftest import wheel


def test_credentials_in_mirror_url_are_refused(mirror):
    response = mirror.client.create_index(
        "root/other",
        type="mirror",
        status=400,
        mirror_url="https://user:secret@example.invalid/simple/",
    )
    message = response.json["message"]
    assert "must not contain credentials" in message
    assert "plugins.mirror.credentials" in message
    assert "secret" not in message


def test_a_mirror_without_mirror_url_mirrors_the_default_upstream(make_mirror, fake_upstream):
    """devpi-client's ``devpi index -c name type=mirror``: devpi-server creates it (with the
    public index as upstream); here the upstream is ``plugins.mirror.default_url``."""
    w = wheel("hello", "1.0")
    fake_upstream.add("hello", w)
    m = make_mirror({"plugins": {"mirror": {"default_url": fake_upstream.url}}})
    created = m.client.create_index("root/other", type="mirror")
    assert created.json["result"]["mirror_url"] == fake_upstream.url
    m.index = "root/other"
    assert m.download("hello", w.filename).body == w.content
    # a mirror_url given wins; removing it later is still refused
    given = m.client.create_index("root/third", type="mirror", mirror_url=fake_upstream.root + "/")
    assert given.json["result"]["mirror_url"] == fake_upstream.root + "/"
    response = m.client.modify_index("root/other", ["mirror_url-="], status=400)
    assert "mirror_url is required" in response.json["message"]


def _credentials(url):
    cred = {"url": url, "username": "u", "password": "p"}
    return {"plugins": {"mirror": {"credentials": {"root/fake": cred}}}}


def test_configured_credentials_reach_only_the_index_host(make_mirror):
    with FakeUpstream(auth=("u", "p")) as upstream:
        m = make_mirror(_credentials(upstream.url), upstream=upstream)
        w = wheel("hello", "1.0")
        upstream.add("hello", w)
        assert m.download("hello", w.filename).body == w.content
        shown = m.client.get("/root/fake").text
        assert "@" not in shown
        assert '"p"' not in shown
    with FakeUpstream(files_host="localhost") as upstream:
        m = make_mirror(_credentials(upstream.url), upstream=upstream)
        upstream.add("hello", w)
        m.download("hello", w.filename)
        assert "Authorization" in upstream.seen("/simple/hello/")[0].headers
        assert "Authorization" not in upstream.seen("/files/")[0].headers


def test_missing_credentials_say_what_to_configure(make_mirror):
    with FakeUpstream(auth=("u", "p")) as upstream:
        m = make_mirror(upstream=upstream)
        message = m.page("hello", status=502).json["message"]
        assert "refused access (401)" in message
        assert "plugins.mirror.credentials" in message


class TokenPlugin:
    """Supplies an Authorization value on 401, like a credential-rotation plugin would."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    @hookimpl
    def devpi_mirror_auth(self, mirror_url: str, www_authenticate: str | None) -> list[str]:
        self.calls.append((mirror_url, www_authenticate))
        return ["Basic " + base64.b64encode(b"u:p").decode()]


def test_mirror_auth_hook_is_asked_on_401(make_app):
    plugin = TokenPlugin()
    with FakeUpstream(auth=("u", "p")) as upstream:
        client = make_app(modules=(("token", plugin),))
        client.login("root", "")
        client.create_index("root/fake", type="mirror", mirror_url=upstream.url)
        upstream.add("hello", wheel("hello", "1.0"))
        assert client.simple_filenames("root/fake", "hello") == ["hello-1.0-py3-none-any.whl"]
    assert plugin.calls == [(upstream.url, 'Basic realm="fake"')]


@pytest.fixture
def stage(make_mirror):
    # a stage based on the mirror: these tests need the stages plugin besides the mirror's own
    mirror = make_mirror({"plugins": {"disabled": ["webui"]}})
    client = mirror.client
    client.create_index("root/dev", bases="root/fake")
    return mirror


def test_stage_serves_its_uploads_and_the_mirror(stage):
    stage.upstream.add("dep", wheel("dep", "1.0"))
    own = wheel("app", "1.0", requires_dist=["dep"])
    stage.client.upload("root/dev", own)
    assert stage.client.simple_filenames("root/dev", "app") == [own.filename]
    assert stage.client.simple_filenames("root/dev", "dep") == ["dep-1.0-py3-none-any.whl"]
    assert stage.upstream.count("/simple/app/") == 0


def test_private_name_hides_the_mirror_and_is_never_sent_upstream(stage):
    stage.upstream.add("hello", wheel("hello", "99.0"))
    own = wheel("hello", "1.0")
    stage.client.upload("root/dev", own)
    assert stage.client.simple_filenames("root/dev", "hello") == [own.filename]
    assert stage.upstream.count("hello") == 0
    stage.client.modify_index("root/dev", ["mirror_whitelist=hello"])
    assert stage.client.simple_filenames("root/dev", "hello") == [
        own.filename,
        "hello-99.0-py3-none-any.whl",
    ]


def test_stage_with_a_down_mirror_still_serves_its_own(stage):
    own = wheel("app", "1.0")
    stage.client.upload("root/dev", own)
    stage.upstream.stop()
    assert stage.client.simple_filenames("root/dev", "app") == [own.filename]


def test_external_urls_redirect_instead_of_caching(make_mirror, fake_upstream):
    m = make_mirror(mirror_use_external_urls=True)
    w = wheel("hello", "1.0")
    fake_upstream.add("hello", w)
    response = m.client.app.get(m.file_url("hello", w.filename), status=302)
    assert response.location.startswith(fake_upstream.root + "/files/")


def test_deleting_a_cached_file_drops_the_blob_but_keeps_the_link(make_mirror):
    m = make_mirror(volatile=True)
    w = wheel("hello", "1.0")
    m.upstream.add("hello", w)
    url = m.file_url("hello", w.filename)
    m.client.app.get(url)
    m.wait_cached()
    m.client.request("DELETE", url, status=200)
    assert m.page("hello")["files"][0]["filename"] == w.filename
    services.blob_collector(m.registry).sweep(grace=0)  # the blob goes after the grace period
    m.upstream.clear()
    assert m.client.app.get(url).body == w.content
    assert m.upstream.count("/files/") == 1


def test_non_volatile_mirror_needs_force(make_mirror):
    m = make_mirror(volatile=False)
    w = wheel("hello", "1.0")
    m.upstream.add("hello", w)
    m.page("hello")
    m.client.request("DELETE", "/root/fake/hello", status=403)
    m.client.request("DELETE", "/root/fake/hello?force", status=200)
    m.upstream.clear()
    m.page("hello")
    assert m.upstream.count("/simple/hello/") == 1


def test_deleting_the_index_removes_its_blobs(make_mirror):
    m = make_mirror()
    w = wheel("hello", "1.0")
    m.upstream.add("hello", w)
    url = m.file_url("hello", w.filename)
    m.client.app.get(url)
    m.wait_cached()
    m.client.request("DELETE", "/root/fake", status=201)
    assert services.blob_store(m.registry).exists(w.sha256), "kept for the grace period"
    services.blob_collector(m.registry).sweep(grace=0)
    assert not services.blob_store(m.registry).exists(w.sha256)


def test_init_creates_root_pypi_from_pip(make_app):
    client = make_app(default_indexes=True)
    config = client.get_json("/root/pypi?no_projects")["result"]
    assert config["type"] == "mirror"
    assert config["volatile"] is False
    assert config["mirror_url"].startswith("https://")
    assert config["mirror_web_url_fmt"].endswith("/{name}/")


def test_init_can_skip_root_pypi_or_use_another_url(make_app):
    client = make_app({"plugins": {"mirror": {"init_root_pypi": False}}}, default_indexes=True)
    client.get("/root/pypi?no_projects", status=404)
    client = make_app(
        {"plugins": {"mirror": {"default_url": "http://127.0.0.1:9/simple/"}}}, default_indexes=True
    )
    assert (
        client.get_json("/root/pypi?no_projects")["result"]["mirror_url"]
        == "http://127.0.0.1:9/simple/"
    )
