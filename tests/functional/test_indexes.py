"""Indexes of type ``stage`` over HTTP: create, modify (dict and list form), list, delete, ACLs."""

from __future__ import annotations

import pytest

from devpi_core.testing.client import PEP691
from devpi_core.testing.dists import DistSpec, make_wheel

DEVPI_DEFAULTS = {
    "type": "stage",
    "bases": [],
    "volatile": True,
    "acl_upload": ["alice"],
    "acl_toxresult_upload": [":ANONYMOUS:"],
    "mirror_whitelist": [],
    "mirror_whitelist_inheritance": "intersection",
}


@pytest.fixture
def alice(client):
    client.create_and_login("alice")
    return client


def test_create_index_with_defaults(alice):
    response = alice.create_index("alice/dev")
    assert response.status_int == 200
    assert response.json["type"] == "indexconfig"
    result = response.json["result"]
    for key, value in DEVPI_DEFAULTS.items():
        assert result[key] == value, key
    assert result["acl_read"] == [":ANONYMOUS:"]


def test_create_index_with_devpi_client_strings(alice):
    alice.create_index("alice/base")
    result = alice.create_index(
        "alice/dev",
        bases="alice/base",
        volatile="False",
        acl_upload="alice,:authenticated:",
        mirror_whitelist="Foo_Bar,baz",
        title="Dev",
        description="d",
        custom_data={"k": [1]},
    ).json["result"]
    assert result["bases"] == ["alice/base"]
    assert result["volatile"] is False
    assert result["acl_upload"] == ["alice", ":AUTHENTICATED:"]
    assert result["mirror_whitelist"] == ["foo-bar", "baz"]
    assert result["title"] == "Dev"
    assert result["custom_data"] == {"k": [1]}


def test_create_index_twice_is_409(alice):
    alice.create_index("alice/dev")
    alice.create_index("alice/dev", status=409)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"bases": "alice/nothere"}, "base index 'alice/nothere' does not exist"),
        ({"bases": "justaname"}, "invalid base index spec"),
        ({"colour": "red"}, "indexconfig got unexpected keyword arguments: colour=red"),
        ({"type": "nosuchtype"}, "unknown index type 'nosuchtype'"),
        ({"volatile": "perhaps"}, "volatile"),
        ({"mirror_whitelist_inheritance": "xor"}, "mirror_whitelist_inheritance"),
        ({"acl_upload": 5}, "acl_upload"),
    ],
)
def test_create_index_rejects_bad_config(alice, config, message):
    response = alice.create_index("alice/dev", status=400, **config)
    assert message in response.json["message"]
    alice.get("/alice/dev", status=404)


@pytest.mark.parametrize("name", ["a b", "x:y", "semi;colon", "q%3Fmark"])
def test_invalid_index_names_are_400(alice, name):
    response = alice.request("PUT", f"/alice/{name}", {}, status=400)
    assert "invalid index name" in response.json["message"]


def test_create_index_body_must_be_an_object(alice):
    alice.request("PUT", "/alice/dev", ["bases=x"], status=400)
    response = alice.app.put(
        "/alice/dev",
        b"{bad json",
        headers={"Accept": "application/json", "Content-Type": "application/json",
                 "X-Devpi-Auth": alice._headers()["X-Devpi-Auth"]},
        status=400,
    )
    assert "malformed JSON" in response.json["message"]


def test_create_index_permissions(client):
    client.create_user("alice")
    client.create_user("bob", "2")
    client.create_index("alice/dev", status=403)  # devpi-server: 403, no challenge
    client.login("bob", "2")
    client.create_index("alice/dev", status=403)
    client.login("root", "")
    client.create_index("nobody/dev", status=404)


def test_patch_with_dict(alice):
    alice.create_index("alice/base")
    alice.create_index("alice/dev")
    result = alice.modify_index("alice/dev", {"bases": ["alice/base"], "volatile": False}).json[
        "result"
    ]
    assert result["bases"] == ["alice/base"]
    assert result["volatile"] is False
    assert result["acl_upload"] == ["alice"]


def test_patch_with_wrapped_indexconfig(alice):
    alice.create_index("alice/dev")
    current = alice.get_json("/alice/dev")
    current["result"]["title"] = "Wrapped"
    result = alice.modify_index("alice/dev", current).json["result"]
    assert result["title"] == "Wrapped"
    assert "projects" not in result


def test_patch_with_operations(alice):
    alice.create_index("alice/dev")
    result = alice.modify_index(
        "alice/dev",
        ["acl_upload+=bob", "acl_upload+=bob", "mirror_whitelist=pkg1,Pkg_2", "title=Dev"],
    ).json["result"]
    assert result["acl_upload"] == ["alice", "bob"]
    assert result["mirror_whitelist"] == ["pkg1", "pkg-2"]
    assert result["title"] == "Dev"
    result = alice.modify_index("alice/dev", ["acl_upload-=bob", "title-="]).json["result"]
    assert result["acl_upload"] == ["alice"]
    assert "title" not in result


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        (["acl_upload-=carl"], "'carl' is not in the list"),
        (["volatile-="], "cannot remove 'volatile'"),
        (["nokey=1"], "indexconfig got unexpected keyword arguments: nokey=1"),
        (["no operator"], "invalid operation"),
        ([5], "invalid operation"),
        (["type=mirror"], "type"),
        (["bases+=alice/ghost"], "does not exist"),
        (["title+=more"], "title is not a list"),
    ],
)
def test_patch_operation_errors(alice, ops, message):
    alice.create_index("alice/dev")
    before = alice.get_json("/alice/dev")["result"]
    response = alice.modify_index("alice/dev", ops, status=400)
    assert message in response.json["message"]
    assert alice.get_json("/alice/dev")["result"] == before


def test_patch_type_change_is_400(alice):
    alice.create_index("alice/dev")
    alice.modify_index("alice/dev", {"type": "mirror"}, status=400)


def test_patch_error_on_noop(alice):
    alice.create_index("alice/dev")
    alice.request("PATCH", "/alice/dev?error_on_noop", ["title=x"], status=200)
    alice.request("PATCH", "/alice/dev?error_on_noop", ["title=x"], status=400)


def test_patch_needs_owner_or_root(client):
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.create_and_login("bob")
    client.modify_index("alice/dev", ["title=bob"], status=403)
    client.logout()
    client.modify_index("alice/dev", ["title=anon"], status=403)
    # a missing index grants no permission: 403, as devpi-server answers
    client.modify_index("alice/ghost", ["title=anon"], status=403)


def test_get_index_lists_own_projects_unless_no_projects(alice):
    alice.create_index("alice/base")
    alice.create_index("alice/dev", bases="alice/base")
    alice.upload("alice/base", make_wheel(DistSpec("inherited", "1.0")))
    alice.upload("alice/dev", make_wheel(DistSpec("Own_Pkg", "1.0")))
    result = alice.get_json("/alice/dev")["result"]
    assert result["projects"] == ["own-pkg"]
    assert "projects" not in alice.get_json("/alice/dev?no_projects=")["result"]
    assert alice.get_json("/alice/dev/")["result"]["projects"] == ["own-pkg"]


def test_get_index_with_pep691_accept_is_the_project_list(alice):
    alice.create_index("alice/dev")
    alice.upload("alice/dev", make_wheel(DistSpec("pkg", "1.0")))
    response = alice.get("/alice/dev/", Accept=PEP691)
    assert response.content_type == PEP691
    assert response.json["projects"] == [{"name": "pkg"}]


def test_user_lists_its_indexes(alice):
    alice.create_index("alice/dev", title="T")
    indexes = alice.get_json("/alice")["result"]["indexes"]
    assert indexes["dev"]["title"] == "T"


def test_delete_index_answers_201_and_drops_everything(alice):
    alice.create_index("alice/dev")
    wheel = make_wheel(DistSpec("pkg", "1.0"))
    alice.upload("alice/dev", wheel)
    response = alice.request("DELETE", "/alice/dev", status=201)
    assert response.json == {"message": "index alice/dev deleted"}
    alice.get("/alice/dev", status=404)
    alice.create_index("alice/dev")
    alice.simple("alice/dev", "pkg", status=404)


def test_delete_non_volatile_index_is_403(alice):
    alice.create_index("alice/prod", volatile=False)
    response = alice.request("DELETE", "/alice/prod", status=403)
    assert response.json["message"] == "index alice/prod non-volatile, cannot delete"
    alice.modify_index("alice/prod", ["volatile=True"])
    alice.request("DELETE", "/alice/prod", status=201)


def test_delete_needs_owner_or_root(client):
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.create_and_login("bob")
    client.request("DELETE", "/alice/dev", status=403)
    client.login("root", "")
    client.request("DELETE", "/alice/dev", status=201)


def test_index_api_endpoints(alice):
    alice.create_index("alice/dev")
    result = alice.get_json("/alice/dev/+api")["result"]
    assert result["index"].endswith("/alice/dev")
    assert result["simpleindex"].endswith("/alice/dev/+simple/")
    assert result["pypisubmit"].endswith("/alice/dev/")
    assert "push-no-docs" in result["features"]
    alice.get("/alice/nothere/+api", status=404)


# -- acl_read (a devpi-core extension) ------------------------------------------------------
@pytest.fixture
def private(client):
    client.create_user("bob", "2")
    client.create_and_login("alice")
    client.create_index("alice/secret", acl_read="alice,:authenticated-never:")
    client.create_index("alice/open")
    client.upload("alice/secret", make_wheel(DistSpec("hidden", "1.0")))
    return client


def test_acl_read_hides_index_config_and_pages(private):
    private.logout()
    private.get("/alice/secret", status=401)
    private.simple("alice/secret", "hidden", status=401)
    private.simple("alice/secret", status=401)
    private.get("/alice/secret/hidden", status=401)
    private.login("bob", "2")
    private.get("/alice/secret", status=403)
    private.simple("alice/secret", "hidden", status=403)
    private.login("alice")
    assert private.simple_filenames("alice/secret", "hidden")
    private.login("root", "")
    assert private.simple_filenames("alice/secret", "hidden")


def test_acl_read_can_be_opened_to_authenticated_users(private):
    private.modify_index("alice/secret", ["acl_read=:authenticated:"])
    private.logout()
    private.simple("alice/secret", "hidden", status=401)
    private.login("bob", "2")
    assert private.simple_filenames("alice/secret", "hidden")
