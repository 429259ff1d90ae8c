"""The upload gate (``devpi_check_upload``) and the upload event, for every way a file arrives.

A test plugin refuses files of the projects named in ``Gate.refuse``; every refusal must come
before anything is stored (no file, no version, no blob, no event), and every accepted file
fires ``devpi_on_upload`` once: uploads, documentation, internal pushes and tox results alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from devpi_core import hookimpl, services
from devpi_core.errors import BadRequest
from devpi_core.testing.dists import DistSpec, make_doczip, make_wheel

if TYPE_CHECKING:
    from devpi_core.records import UploadCheck, UploadEvent

TOXREPORT = {"reportversion": "1", "testenvs": {}}


class Gate:
    """Records every check and every upload event; refuses the projects in ``refuse``."""

    def __init__(self) -> None:
        self.checks: list[UploadCheck] = []
        self.events: list[UploadEvent] = []
        self.refuse: set[tuple[str, str]] = set()  # (index, rel)

    @hookimpl
    def devpi_check_upload(self, check: UploadCheck) -> None:
        self.checks.append(check)
        if (check.index, check.rel) in self.refuse:
            raise BadRequest(f"{check.filename}: refused by the gate ({check.action})")

    @hookimpl
    def devpi_on_upload(self, event: UploadEvent) -> None:
        self.events.append(event)


@pytest.fixture
def gate():
    return Gate()


@pytest.fixture
def alice(make_app, gate):
    client = make_app(modules=(("gate", gate),))
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.create_index("alice/prod")
    return client


WHEEL = make_wheel(DistSpec("pkg", "1.0", summary="gated"))


def doc_upload(client, index="alice/dev", status=200):
    return client.app.post(
        f"/{index}/",
        params=[(":action", "doc_upload"), ("name", "pkg"), ("version", "1.0")],
        upload_files=[("content", "pkg.zip", make_doczip())],
        headers=client._headers(json_accept=False),
        status=status,
        expect_errors=True,
    )


def release_href(client, index="alice/dev"):
    links = client.get_json(f"/{index}/pkg/1.0")["result"]["+links"]
    return next(link["href"] for link in links if link["rel"] == "releasefile").replace(
        "http://localhost", ""
    )


def rels(client, index):
    found = client.get_json(f"/{index}/pkg/1.0", status="*")
    return sorted(link["rel"] for link in found.get("result", {}).get("+links", []))


def test_a_refused_upload_stores_nothing_and_says_why(alice, gate):
    gate.refuse.add(("alice/dev", "releasefile"))
    response = alice.upload("alice/dev", WHEEL, status=400, license="MIT")
    message = f"{WHEEL.filename}: refused by the gate (upload)"
    assert response.status == f"400 {message}"  # twine prints the reason phrase
    assert message in response.text
    assert alice.get_json("/alice/dev/pkg", status=404)
    assert not services.blob_store(alice.app.app.registry).exists(WHEEL.sha256)
    assert gate.events == []
    (check,) = gate.checks
    assert (check.index, check.project, check.version, check.filename) == (
        "alice/dev", "pkg", "1.0", WHEEL.filename,
    )
    assert (check.rel, check.action, check.username) == ("releasefile", "upload", "alice")
    assert (check.size, check.sha256) == (len(WHEEL.content), WHEEL.sha256)
    assert check.metadata["license"] == "MIT"
    assert check.metadata["summary"] == "gated"  # filled from the wheel's METADATA


def test_every_way_a_file_arrives_is_checked_and_reported(alice, gate):
    uploaded = alice.upload("alice/dev", WHEEL)
    doc_upload(alice)
    tox = alice.request("POST", release_href(alice), TOXREPORT, status=200)
    pushed = alice.request("POST", "/alice/dev", {"name": "pkg", "version": "1.0",
                                                  "targetindex": "alice/prod"})
    assert [(c.index, c.rel, c.action) for c in gate.checks[:3]] == [
        ("alice/dev", "releasefile", "upload"),
        ("alice/dev", "doczip", "upload"),
        ("alice/dev", "toxresult", "toxresult"),
    ]
    pushes = ["doczip", "releasefile", "toxresult"]
    assert sorted((c.index, c.rel, c.action, c.source) for c in gate.checks[3:]) == [
        ("alice/prod", rel, "push", "alice/dev") for rel in pushes
    ]
    assert [(e.index, e.rel, e.username) for e in gate.events[:3]] == [
        ("alice/dev", "releasefile", "alice"),
        ("alice/dev", "doczip", "alice"),
        ("alice/dev", "toxresult", "alice"),
    ]
    assert sorted((e.index, e.rel, e.username) for e in gate.events[3:]) == [
        ("alice/prod", rel, "alice") for rel in pushes
    ]
    assert gate.events[0].serial == int(uploaded.headers["X-DEVPI-SERIAL"])
    assert gate.events[2].serial == int(tox.headers["X-DEVPI-SERIAL"])
    # one commit for the whole push: its events share the serial of the answer
    assert {e.serial for e in gate.events[3:]} == {int(pushed.headers["X-DEVPI-SERIAL"])}


def test_a_refused_doc_upload_stores_nothing(alice, gate):
    alice.upload("alice/dev", WHEEL)
    gate.refuse.add(("alice/dev", "doczip"))
    response = doc_upload(alice, status=400)
    assert "refused by the gate (upload)" in response.status
    assert rels(alice, "alice/dev") == ["releasefile"]
    assert [e.rel for e in gate.events] == ["releasefile"]


def test_a_refused_tox_result_stores_nothing(alice, gate):
    alice.upload("alice/dev", WHEEL)
    gate.refuse.add(("alice/dev", "toxresult"))
    response = alice.request("POST", release_href(alice), TOXREPORT, status=400)
    assert "refused by the gate (toxresult)" in response.json["message"]
    assert rels(alice, "alice/dev") == ["releasefile"]
    assert [e.rel for e in gate.events] == ["releasefile"]


def test_a_push_is_refused_before_any_of_its_files_is_stored(alice, gate):
    alice.upload("alice/dev", WHEEL)
    doc_upload(alice)
    gate.refuse.add(("alice/prod", "doczip"))  # the release file alone would pass
    response = alice.request(
        "POST", "/alice/dev", {"name": "pkg", "version": "1.0", "targetindex": "alice/prod"},
        status=400,
    )
    assert "refused by the gate (push)" in response.json["message"]
    assert alice.get_json("/alice/prod/pkg", status=404)
    assert [e.index for e in gate.events] == ["alice/dev", "alice/dev"]


def test_identical_reupload_fires_no_second_event(alice, gate):
    alice.modify_index("alice/dev", {"volatile": False})
    alice.upload("alice/dev", WHEEL)
    alice.upload("alice/dev", WHEEL)
    assert len(gate.checks) == 2  # the gate sees every attempt
    assert len(gate.events) == 1  # but nothing new was stored the second time
