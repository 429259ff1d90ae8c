"""Listings show only the indexes the caller may read.

The reported leak: anonymous ``GET /`` and ``GET /<user>`` returned the whole configuration of
indexes whose ``acl_read`` excludes the caller (description, ``custom_data``, ACLs). Such an
index is now left out of every listing, JSON and web UI, as if it did not exist for the caller.
"""

from __future__ import annotations

import pytest

from devpi_core.testing.devpiclient import DevpiCLI, ServerAPI, running_server, setup_user

SECRET = "internal codename falcon"


@pytest.fixture
def server(make_app):
    client = make_app()
    client.create_user("bob")
    client.create_user("carol")
    client.create_and_login("alice")
    client.create_index("alice/open", description="for everyone")
    client.create_index(
        "alice/private",
        acl_read=["alice", ":team"],
        description=SECRET,
        custom_data={"codename": SECRET},
    )
    client.create_index("alice/team", acl_read=["carol"])
    client.logout()
    return client


def listed(client, path: str) -> dict:
    result = client.get_json(path)["result"]
    return result["alice"]["indexes"] if path == "/" else result["indexes"]


@pytest.mark.parametrize("path", ["/", "/alice"])
def test_anonymous_sees_only_readable_indexes(server, path):
    response = server.get(path)
    assert sorted(listed(server, path)) == ["open"]
    assert SECRET not in response.text
    assert listed(server, path)["open"]["description"] == "for everyone"


@pytest.mark.parametrize("path", ["/", "/alice"])
def test_each_user_sees_what_their_acl_read_allows(server, path):
    server.use_password("bob")
    assert sorted(listed(server, path)) == ["open"]
    server.use_password("carol")
    assert sorted(listed(server, path)) == ["open", "team"]
    server.use_password("alice")
    assert sorted(listed(server, path)) == ["open", "private", "team"]
    assert listed(server, path)["private"]["custom_data"] == {"codename": SECRET}
    server.use_password("root", "")
    assert sorted(listed(server, path)) == ["open", "private", "team"]


def test_users_are_still_listed_without_readable_indexes(server):
    result = server.get_json("/")["result"]
    assert sorted(result) == ["alice", "bob", "carol", "root"]
    assert server.get_json("/carol")["result"]["indexes"] == {}


def test_web_ui_lists_only_readable_indexes(server):
    for path in ("/", "/alice", "/+search?q=falcon"):
        page = server.app.get(path, headers={"Accept": "text/html"}, expect_errors=True)
        assert page.status_int == 200, page
        assert "alice/private" not in page.text
        assert SECRET not in page.text
    assert "alice/open" in server.app.get("/alice", headers={"Accept": "text/html"}).text


@pytest.mark.e2e
def test_devpi_client_lists_private_indexes_only_when_logged_in(tmp_path):
    with running_server(tmp_path / "server") as process:
        devpi = DevpiCLI.create(tmp_path / "client")
        user = setup_user(devpi, process.url)
        # devpi index -c sends its JSON with PUT, checked for its content type now
        devpi("index", "-c", "hidden", f"acl_read={user.name}", f"description={SECRET}")
        owner = devpi("use", "-l").stdout
        assert f"{user.name}/hidden" in owner
        assert f"{user.name}/hidden" in devpi("index", "-l").stdout
        devpi("logoff")
        anonymous = devpi("use", "-l")
        assert f"{user.fullindex}" in anonymous.stdout
        assert "hidden" not in anonymous.out
        assert "hidden" not in devpi("index", "-l", user.name).out
        api = ServerAPI(process.url)
        try:
            assert SECRET not in api.get("/").text
            assert SECRET not in api.get(f"/{user.name}").text
        finally:
            api.close()
