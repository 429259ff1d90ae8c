"""PEP 792 status of stage projects: ``PATCH /<user>/<index>/<project>``, uploads refused for
archived and quarantined projects, no files of a quarantined one, status on simple pages."""

from __future__ import annotations

from urllib.parse import urljoin

import pytest

from devpi_core.testing.dists import DistSpec, make_sdist, make_wheel


@pytest.fixture
def alice(client):
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.wheel = make_wheel(DistSpec("hello", "1.0"))
    client.upload("alice/dev", client.wheel)
    return client


def set_status(client, status: str, reason: str | None = None, *, code: int = 200):
    body = {"project-status": status}
    if reason is not None:
        body["reason"] = reason
    return client.request("PATCH", "/alice/dev/hello", body, status=code)


def file_path(client) -> str:
    page = client.simple("alice/dev", "hello", json_api=True).json
    return urljoin("/alice/dev/+simple/hello/", page["files"][0]["url"])


def test_archived_project_refuses_uploads_and_keeps_serving(alice):
    path = file_path(alice)
    answer = set_status(alice, "archived", "moved to hello2").json
    assert answer["result"] == {"project-status": "archived", "reason": "moved to hello2"}
    page = alice.simple("alice/dev", "hello", json_api=True).json
    assert page["project-status"] == {"status": "archived", "reason": "moved to hello2"}
    assert len(page["files"]) == 1
    html = alice.simple("alice/dev", "hello").text
    assert '<meta name="pypi:project-status" content="archived">' in html
    assert alice.app.get(path).body == alice.wheel.content
    # twine prints the reason phrase, devpi-client the JSON message
    refused = alice.upload("alice/dev", make_sdist(DistSpec("hello", "1.1")), status=409)
    assert "archived" in refused.status
    assert "moved to hello2" in refused.status
    refused = alice.upload("alice/dev", make_sdist(DistSpec("hello", "1.2")), status=409,
                           action="submit")
    assert "archived" in refused.status
    assert list(alice.get_json("/alice/dev/hello")["result"]) == ["1.0"]
    # set back to active: uploads work again
    set_status(alice, "active")
    assert alice.simple("alice/dev", "hello", json_api=True).json["project-status"] == {
        "status": "active"
    }
    alice.upload("alice/dev", make_sdist(DistSpec("hello", "1.1")))


def test_quarantined_project_serves_no_file(alice):
    path = file_path(alice)
    set_status(alice, "quarantined", "compromised maintainer account")
    page = alice.simple("alice/dev", "hello", json_api=True).json
    assert page["files"] == []
    assert page["project-status"]["status"] == "quarantined"
    response = alice.app.get(path, headers={"Accept": "application/json"}, status=410)
    assert "compromised maintainer account" in response.json["message"]
    alice.app.get(path + ".metadata", status=410)
    alice.upload("alice/dev", make_sdist(DistSpec("hello", "1.1")), status=409)
    # a stage over it sees the quarantine too
    alice.create_index("alice/prod", bases="alice/dev")
    assert alice.simple("alice/prod", "hello", json_api=True).json["files"] == []


def test_deprecated_project_takes_uploads(alice):
    set_status(alice, "deprecated")
    assert alice.simple("alice/dev", "hello", json_api=True).json["project-status"] == {
        "status": "deprecated"
    }
    alice.upload("alice/dev", make_sdist(DistSpec("hello", "1.1")))


BAD_BODIES = (
    {"project-status": "sunk"},
    {"project-status": "archived", "reason": 3},
    {"project-status": "archived", "color": "red"},
    {},
    ["archived"],
)


def test_bad_status_is_400_and_changes_nothing(alice):
    for body in BAD_BODIES:
        response = alice.request("PATCH", "/alice/dev/hello", body, status=400)
        assert response.json["message"]
    page = alice.simple("alice/dev", "hello", json_api=True).json
    assert page["project-status"] == {"status": "active"}
    alice.upload("alice/dev", make_sdist(DistSpec("hello", "1.1")))


def test_only_owner_or_root_sets_status(alice):
    alice.logout()
    set_status(alice, "quarantined", code=403)
    alice.create_and_login("bob")
    set_status(alice, "quarantined", code=403)
    alice.login("root", "")
    set_status(alice, "quarantined")
    alice.request("PATCH", "/alice/dev/nosuch", {"project-status": "archived"}, status=404)


def test_mirror_projects_take_no_status_from_the_api(make_app, fake_upstream):
    client = make_app()
    client.login("root", "")
    client.create_index("root/fake", type="mirror", mirror_url=fake_upstream.url)
    fake_upstream.add("hello", make_wheel(DistSpec("hello", "1.0")))
    client.simple("root/fake", "hello")
    client.request("PATCH", "/root/fake/hello", {"project-status": "archived"}, status=403)


def test_project_json_and_pypi_json_carry_the_status(alice):
    def statuses(index: str) -> list[dict[str, str]]:
        devpi = alice.get_json(f"/{index}/hello")
        assert devpi["type"] == "projectconfig"
        assert list(devpi["result"]) == ["1.0"]  # result keys stay versions (devpi list)
        pypi = alice.get_json(f"/{index}/pypi/hello/json")
        assert pypi["info"]["version"] == "1.0"
        return [devpi["project-status"], pypi["project-status"]]

    assert statuses("alice/dev") == [{"status": "active"}] * 2
    set_status(alice, "archived", "moved to hello2")
    assert statuses("alice/dev") == [{"status": "archived", "reason": "moved to hello2"}] * 2
    # over bases, as the simple page: the most restrictive
    alice.create_index("alice/prod", bases="alice/dev")
    assert statuses("alice/prod") == [{"status": "archived", "reason": "moved to hello2"}] * 2
    set_status(alice, "deprecated")
    assert statuses("alice/prod") == [{"status": "deprecated"}] * 2


def test_a_mirror_quarantine_withholds_the_mirrors_files_not_the_stages_own(make_app,
                                                                           fake_upstream):
    """alice/dev takes ``hello`` from root/fake too (mirror_whitelist) and has its own upload:
    the upstream's quarantine of ``hello`` withholds the mirror's files on alice/dev as on
    root/fake, but alice's own file is hers and stays served."""
    fake_upstream.add("hello", make_wheel(DistSpec("hello", "1.0")))
    client = make_app()
    client.login("root", "")
    client.create_index("root/fake", type="mirror", mirror_url=fake_upstream.url)
    client.create_and_login("alice")
    client.create_index("alice/dev", bases="root/fake", mirror_whitelist="hello")
    own = make_wheel(DistSpec("hello", "2.0"))
    client.upload("alice/dev", own)
    page = client.simple("alice/dev", "hello", json_api=True).json
    urls = {f["filename"]: urljoin("/alice/dev/+simple/hello/", f["url"]) for f in page["files"]}
    assert set(urls) == {"hello-1.0-py3-none-any.whl", "hello-2.0-py3-none-any.whl"}
    fake_upstream.set_status("hello", "quarantined", "malware")
    assert client.app.post("/root/fake/+simple/hello/refresh").status_int == 302

    page = client.simple("alice/dev", "hello", json_api=True).json
    assert [f["filename"] for f in page["files"]] == ["hello-2.0-py3-none-any.whl"]
    assert page["project-status"] == {"status": "active"}  # alice's project is not quarantined
    assert client.app.get(urls["hello-2.0-py3-none-any.whl"]).body == own.content
    gone = client.app.get(urls["hello-1.0-py3-none-any.whl"], status=410,
                          headers={"Accept": "application/json"})
    assert "malware" in gone.json["message"]
    assert client.simple("root/fake", "hello", json_api=True).json["files"] == []
    # the web UI, devpi's JSON and PyPI's JSON show what the page links
    pypi = client.get_json("/alice/dev/pypi/hello/json")
    assert [u["filename"] for u in pypi["urls"]] == ["hello-2.0-py3-none-any.whl"]
    listed = [f["filename"] for files in pypi["releases"].values() for f in files]
    assert listed == ["hello-2.0-py3-none-any.whl"]
    assert pypi["project-status"] == {"status": "active"}
    assert client.get_json("/alice/dev/hello")["project-status"] == {"status": "active"}
    html = client.app.get("/alice/dev/hello/2.0", headers={"Accept": "text/html"}).text
    assert "hello-2.0-py3-none-any.whl</a>" in html  # linked in its files table
