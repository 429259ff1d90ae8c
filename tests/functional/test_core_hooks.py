"""The hooks no bundled plugin implements, exercised through HTTP with a test plugin.

Events (upload, delete, index change, mirror refresh), identity groups, a deny-list simple
policy, metrics and API features; see ``recording_plugin.py``. The mirror plugin's own hooks are
tested with the mirror plugin.
"""

from __future__ import annotations

import logging
import time

import pytest
from recording_plugin import Recorder

from devpi_core.records import DeleteEvent, IndexEvent, MirrorRefreshEvent, UploadEvent
from devpi_core.testing.dists import DistSpec, make_wheel


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def app_with(make_app, recorder):
    def factory(**settings):
        return make_app({"plugins": {"recorder": settings}}, modules=(("recorder", recorder),))

    return factory


def serial_of(response):
    return int(response.headers["X-DEVPI-SERIAL"])


def file_path(client, fullname, project, version):
    result = client.get_json(f"/{fullname}/{project}/{version}")["result"]
    href = result["+links"][0]["href"]
    return "/" + href.split("/", 3)[3]


def test_events_for_index_changes_uploads_and_deletes(app_with, recorder):
    client = app_with()
    client.create_and_login("alice")
    created = client.create_index("alice/dev")
    assert recorder.events == [
        IndexEvent("alice/dev", "created", created.json["result"], "alice", serial_of(created))
    ]
    modified = client.modify_index("alice/dev", {"title": "Dev"})
    assert recorder.events[-1] == IndexEvent(
        "alice/dev", "modified", modified.json["result"], "alice", serial_of(modified)
    )

    wheel = make_wheel(DistSpec("hello", "1.0"))
    uploaded = client.upload("alice/dev", wheel)
    assert recorder.events[-1] == UploadEvent(
        "alice/dev", "hello", "1.0", wheel.filename, "releasefile", "alice", serial_of(uploaded)
    )

    deleted = client.request("DELETE", file_path(client, "alice/dev", "hello", "1.0"), status=200)
    assert recorder.events[-1] == DeleteEvent(
        "alice/dev", "hello", "1.0", wheel.filename, "alice", serial_of(deleted)
    )

    client.upload("alice/dev", make_wheel(DistSpec("hello", "2.0")))
    client.upload("alice/dev", make_wheel(DistSpec("hello", "3.0")))
    deleted = client.request("DELETE", "/alice/dev/hello/2.0", status=200)
    assert recorder.events[-1] == DeleteEvent(
        "alice/dev", "hello", "2.0", None, "alice", serial_of(deleted)
    )
    deleted = client.request("DELETE", "/alice/dev/hello", status=200)
    assert recorder.events[-1] == DeleteEvent(
        "alice/dev", "hello", None, None, "alice", serial_of(deleted)
    )

    deleted = client.request("DELETE", "/alice/dev", status=201)
    assert recorder.events[-1] == IndexEvent(
        "alice/dev", "deleted", None, "alice", serial_of(deleted)
    )
    assert [type(e).__name__ for e in recorder.events] == [
        "IndexEvent",
        "IndexEvent",
        "UploadEvent",
        "DeleteEvent",
        "UploadEvent",
        "UploadEvent",
        "DeleteEvent",
        "DeleteEvent",
        "IndexEvent",
    ]


def test_a_mirror_fetching_a_page_reports_it(app_with, recorder, fake_upstream):
    client = app_with()
    fake_upstream.add("hello", make_wheel(DistSpec("hello", "1.0")))
    client.login("root", "")
    client.create_index("root/upstream", type="mirror", mirror_url=fake_upstream.url)
    assert len(client.simple_filenames("root/upstream", "hello")) == 1
    deadline = time.monotonic() + 10  # the event follows the commit, behind the answer
    while not recorder.of_type(MirrorRefreshEvent) and time.monotonic() < deadline:
        time.sleep(0.01)
    (event,) = recorder.of_type(MirrorRefreshEvent)
    assert (event.index, event.project, event.changed) == ("root/upstream", "hello", True)


def test_deleting_a_user_reports_each_of_their_indexes(app_with, recorder):
    client = app_with()
    client.create_and_login("alice")
    client.create_index("alice/one")
    client.create_index("alice/two")
    client.request("DELETE", "/alice", status=200)
    assert [(e.index, e.action) for e in recorder.of_type(IndexEvent)][-2:] == [
        ("alice/one", "deleted"),
        ("alice/two", "deleted"),
    ]


def test_failed_writes_fire_no_events(app_with, recorder):
    client = app_with()
    client.create_and_login("alice")
    client.create_index("alice/dev", volatile=False)
    wheel = make_wheel(DistSpec("hello", "1.0"))
    client.upload("alice/dev", wheel)
    before = list(recorder.events)
    client.upload("alice/dev", make_wheel(DistSpec("hello", "1.0", summary="other")), status=409)
    client.create_index("alice/dev", status=409)
    client.request("DELETE", "/alice/dev", status=403)
    client.logout()
    client.upload("alice/dev", make_wheel(DistSpec("other", "1.0")), status=401)
    assert recorder.events == before


def test_a_failing_event_hook_does_not_fail_the_write(app_with, recorder, caplog):
    client = app_with(fail_events=True)
    client.create_and_login("alice")
    client.create_index("alice/dev")
    wheel = make_wheel(DistSpec("hello", "1.0"))
    with caplog.at_level(logging.ERROR, logger="devpi_core.plugins"):
        client.upload("alice/dev", wheel, status=200)
    assert client.simple_filenames("alice/dev", "hello") == [wheel.filename]
    assert "event hook devpi_on_upload of plugin recorder failed" in caplog.text
    assert recorder.events == []


def test_identity_groups_take_part_in_acls(app_with):
    client = app_with(groups={"alice": ["devs"]})
    client.login("root", "")
    client.create_index("root/team", acl_upload=[":devs"])
    client.create_user("alice")
    client.create_user("bob")

    client.login("alice")
    authstatus = client.get_json("/+api")["result"]["authstatus"]
    assert authstatus == ["ok", "alice", ["devs"]]
    client.upload("root/team", make_wheel(DistSpec("by-alice", "1.0")), status=200)

    client.login("bob")
    assert client.get_json("/+api")["result"]["authstatus"] == ["ok", "bob", []]
    client.upload("root/team", make_wheel(DistSpec("by-bob", "1.0")), status=403)
    assert client.get_json("/root/team")["result"]["projects"] == ["by-alice"]


def test_deny_list_policy_filters_simple_pages(app_with, recorder):
    client = app_with(deny=["evil", "good==2.0"])
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.create_index("alice/child", bases=["alice/dev"])
    good1, good2 = make_wheel(DistSpec("good", "1.0")), make_wheel(DistSpec("good", "2.0"))
    for dist in (good1, good2, make_wheel(DistSpec("evil", "1.0"))):
        client.upload("alice/dev", dist)

    for index in ("alice/dev", "alice/child"):
        assert client.simple_filenames(index, "good") == [good1.filename]
        assert client.simple_filenames(index, "evil") == []
        html = client.simple(index, "good").text
        assert good1.filename in html
        assert good2.filename not in html
    assert "alice/child" in recorder.policy_calls
    # the policy filters pages only: the file itself and the JSON API still know it
    assert client.get_json("/alice/dev/good/2.0")["result"]["version"] == "2.0"


def test_pages_are_not_filtered_without_the_policy(app_with):
    client = app_with()
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.upload("alice/dev", make_wheel(DistSpec("evil", "1.0")))
    assert len(client.simple_filenames("alice/dev", "evil")) == 1


def test_a_policy_whose_cache_key_changes_is_applied_again(app_with, recorder):
    # SimplePolicy's contract: rendered pages are cached per cache_key, so a changed key (for a
    # minimum release age: the hour) must re-filter even when no write happened.
    client = app_with()
    client.create_and_login("alice")
    client.create_index("alice/dev")
    wheel = make_wheel(DistSpec("soon-denied", "1.0"))
    client.upload("alice/dev", wheel)
    assert client.simple_filenames("alice/dev", "soon-denied") == [wheel.filename]
    recorder.settings["deny"] = ["soon-denied"]
    assert client.simple_filenames("alice/dev", "soon-denied") == []


def test_metrics_and_features_reach_status_and_api(app_with):
    client = app_with()
    client.create_and_login("alice")
    client.create_index("alice/dev")
    status = client.get_json("/+status")["result"]
    assert ["recorder_events_total", "counter", 1.0] in status["metrics"]
    assert "recorder" in status["plugins"]
    features = client.get_json("/+api")["result"]["features"]
    assert "recorder-events" in features
    assert "server-keyvalue-parsing" in features
    assert features == sorted(features)
