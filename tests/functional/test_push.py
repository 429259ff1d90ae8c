"""Internal push (API.md 1.10) and tox results (1.11) through WebTest.

The PUSH method itself and external pushes to a second server are in
tests/e2e/test_private_server.py (WebTest's lint refuses unknown methods).
"""

from __future__ import annotations

import pytest

from devpi_core import services
from devpi_core.testing.dists import DistSpec, make_doczip, make_sdist, make_wheel


@pytest.fixture
def alice(client):
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.create_index("alice/prod", volatile=False)
    spec = DistSpec("pkg", "1.0", summary="pushed along")
    client.wheel, client.sdist = make_wheel(spec), make_sdist(spec)
    client.upload("alice/dev", client.wheel, summary="pushed along")
    client.upload("alice/dev", client.sdist)
    client.app.post(
        "/alice/dev/",
        params=[(":action", "doc_upload"), ("name", "pkg"), ("version", "1.0")],
        upload_files=[("content", "pkg.zip", make_doczip())],
        headers=client._headers(json_accept=False),
    )
    return client


def push(client, body, *, status=200, index="alice/dev"):
    return client.request("POST", f"/{index}", body, status=status)


def links(client, index, project="pkg", version="1.0"):
    return client.get_json(f"/{index}/{project}/{version}")["result"]["+links"]


def test_internal_push_copies_files_docs_and_logs(alice):
    response = push(alice, {"name": "pkg", "version": "1.0", "targetindex": "alice/prod"})
    assert response.json["type"] == "actionlog"
    rows = response.json["result"]
    assert rows[0] == [200, "register", "pkg", "1.0", "->", "alice/prod"]
    kinds = sorted(row[1] for row in rows[1:])
    assert kinds == ["store_doczip", "store_releasefile", "store_releasefile"]
    assert all(row[2].startswith("alice/prod/+f/") for row in rows if row[1] == "store_releasefile")
    pushed = links(alice, "alice/prod")
    assert sorted(link["rel"] for link in pushed) == ["doczip", "releasefile", "releasefile"]
    release = next(link for link in pushed if link["href"].endswith(".whl"))
    assert release["hash_spec"] == f"sha256={alice.wheel.sha256}"
    assert [entry["what"] for entry in release["log"]] == ["upload", "push"]
    assert release["log"][1]["src"] == "alice/dev"
    assert release["log"][1]["dst"] == "alice/prod"
    assert alice.get_json("/alice/prod/pkg/1.0")["result"]["summary"] == "pushed along"
    assert sorted(alice.simple_filenames("alice/prod", "pkg")) == sorted(
        [alice.wheel.filename, alice.sdist.filename]
    )
    assert alice.app.get("/alice/prod/pkg/1.0/+doc/").status_int == 200


def test_push_is_idempotent_on_non_volatile_target(alice):
    body = {"name": "pkg", "version": "1.0", "targetindex": "alice/prod"}
    push(alice, body)
    push(alice, body)
    assert len(links(alice, "alice/prod")) == 3


@pytest.mark.parametrize(
    ("flag", "rels"), [("no_docs", ["releasefile", "releasefile"]), ("only_docs", ["doczip"])]
)
def test_push_doc_options(alice, flag, rels):
    push(alice, {"name": "pkg", "version": "1.0", "targetindex": "alice/prod", flag: True})
    assert sorted(link["rel"] for link in links(alice, "alice/prod")) == rels


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            {
                "name": "pkg",
                "version": "1.0",
                "targetindex": "alice/prod",
                "no_docs": True,
                "only_docs": True,
            },
            400,
            "only_docs",
        ),
        ({"name": "pkg", "version": "1.0", "targetindex": "alice/prod", "bogus": 1}, 400, "bogus"),
        ({"name": "pkg", "version": "9.9", "targetindex": "alice/prod"}, 400, "9.9"),
        ({"name": "nothere", "version": "1.0", "targetindex": "alice/prod"}, 400, "nothere"),
        ({"name": "pkg", "targetindex": "alice/prod"}, 400, "version"),
        ({"name": "pkg", "version": "1.0", "targetindex": "noslash"}, 400, "user/index"),
        ({"name": "pkg", "version": "1.0", "targetindex": "alice/ghost"}, 404, "alice/ghost"),
        ({"name": "pkg", "version": "1.0"}, 400, "targetindex"),
        ({"name": "pkg", "version": "1.0", "posturl": "ftp://x/"}, 400, "posturl"),
    ],
)
def test_push_errors(alice, body, status, message):
    response = push(alice, body, status=status)
    assert message in response.json["message"]
    alice.get("/alice/prod/pkg", status=404)


def test_push_needs_upload_permission_on_target(alice):
    alice.create_and_login("bob")
    alice.create_index("bob/mine")
    response = push(
        alice, {"name": "pkg", "version": "1.0", "targetindex": "alice/prod"}, status=401
    )
    assert response.json["message"] == "user 'bob' cannot upload to 'alice/prod'"
    push(alice, {"name": "pkg", "version": "1.0", "targetindex": "bob/mine"})
    assert len(links(alice, "bob/mine")) == 3


def test_push_needs_read_permission_on_source(alice):
    alice.modify_index("alice/dev", ["acl_read=alice"])
    alice.create_and_login("bob")
    alice.create_index("bob/mine")
    push(alice, {"name": "pkg", "version": "1.0", "targetindex": "bob/mine"}, status=403)


def test_push_conflict_on_non_volatile_target_changes_nothing(alice):
    other = make_wheel(DistSpec("pkg", "1.0"), padding=300)
    alice.upload("alice/prod", other)
    response = push(
        alice, {"name": "pkg", "version": "1.0", "targetindex": "alice/prod"}, status=409
    )
    assert (
        response.json["message"] == f"{alice.wheel.filename} already exists in non-volatile index"
    )
    assert [link["hash_spec"] for link in links(alice, "alice/prod")] == [f"sha256={other.sha256}"]


# -- tox results ----------------------------------------------------------------------------
TOXREPORT = {"reportversion": "1", "testenvs": {"py311": {"test": [{"retcode": 0}]}}}


def release_href(client, index="alice/dev"):
    link = next(link for link in links(client, index) if link["href"].endswith(".whl"))
    return link["href"].replace("http://localhost", "")


def test_toxresult_upload_attaches_to_release(alice):
    href = release_href(alice)
    response = alice.request("POST", href, TOXREPORT, status=200)
    assert response.json["type"] == "toxresultpath"
    path = response.json["result"]
    assert path.startswith(href.lstrip("/").rsplit("/", 1)[0] + "/")
    assert f"{alice.wheel.filename}.toxresult-" in path
    assert "#sha256=" in path
    tox = [link for link in links(alice, "alice/dev") if link["rel"] == "toxresult"]
    assert len(tox) == 1
    assert tox[0]["for_href"].endswith(href)
    assert alice.get(tox[0]["href"], Accept="*/*").json == TOXREPORT
    # the tox result travels with a push
    push(alice, {"name": "pkg", "version": "1.0", "targetindex": "alice/prod"})
    pushed = [link for link in links(alice, "alice/prod") if link["rel"] == "toxresult"]
    assert len(pushed) == 1
    assert pushed[0]["for_href"] == "http://localhost" + release_href(alice, "alice/prod")


def test_two_toxresults_in_the_same_second_get_distinct_names(alice):
    href = release_href(alice)
    first = alice.request("POST", href, TOXREPORT, status=200).json["result"]
    second = alice.request("POST", href, {**TOXREPORT, "run": 2}, status=200).json["result"]
    assert first.split("#")[0] != second.split("#")[0]


def test_toxresult_errors(alice):
    href = release_href(alice)
    alice.app.post(
        href,
        b"{not json",
        headers={**alice._headers(), "Content-Type": "application/json"},
        status=400,
    )
    alice.request("POST", "/alice/dev/+f/abc/def0123456789/nothere.whl", TOXREPORT, status=404)
    alice.modify_index("alice/dev", ["acl_toxresult_upload=alice"])
    alice.logout()
    response = alice.request("POST", href, TOXREPORT, status=403)
    assert "devpi test --no-upload" in response.json["message"]


def test_deleting_a_release_drops_its_toxresults(alice):
    href = release_href(alice)
    path = alice.request("POST", href, TOXREPORT, status=200).json["result"]
    sha = path.split("#sha256=")[1]
    alice.request("DELETE", href, status=200)
    assert not [link for link in links(alice, "alice/dev") if link["rel"] == "toxresult"]
    services.blob_collector(alice.app.app.registry).sweep(grace=0)
    assert not services.blob_store(alice.app.app.registry).exists(sha)


def test_push_over_a_file_of_a_volatile_index_logs_as_devpi_does(alice):
    """devpi-server's log of the replacing file: overwrite, the source's upload, the push."""
    alice.create_index("alice/stage")
    older = make_sdist(DistSpec("pkg", "1.0", summary="older"))
    alice.upload("alice/stage", older)
    assert older.filename == alice.sdist.filename
    assert older.sha256 != alice.sdist.sha256
    push(alice, {"name": "pkg", "version": "1.0", "targetindex": "alice/stage"})
    pushed = next(link for link in links(alice, "alice/stage") if link["href"].endswith(".tar.gz"))
    assert pushed["hash_spec"] == f"sha256={alice.sdist.sha256}"
    log = [{k: v for k, v in entry.items() if k != "when"} for entry in pushed["log"]]
    assert log == [
        {"what": "overwrite", "who": None, "count": 1},
        {"what": "upload", "who": "alice", "dst": "alice/dev"},
        {"what": "push", "who": "alice", "src": "alice/dev", "dst": "alice/stage"},
    ]
    assert all(len(entry["when"]) == 6 for entry in pushed["log"])


def test_push_from_a_mirror_reads_a_page_never_asked_for(make_app, fake_upstream):
    client = make_app()
    client.create_and_login("bob")
    client.create_index("bob/dev")
    client.create_index("bob/mirror", type="mirror", mirror_url=fake_upstream.url)
    wheel = make_wheel(DistSpec("fresh", "1.0"))
    fake_upstream.add("fresh", wheel)
    body = {"name": "fresh", "version": "1.0", "targetindex": "bob/dev"}
    rows = push(client, body, index="bob/mirror").json["result"]
    assert rows[-1][:2] == [200, "store_releasefile"]
    assert [link["href"].rsplit("/", 1)[-1] for link in links(client, "bob/dev", "fresh")] == [
        wheel.filename
    ]
