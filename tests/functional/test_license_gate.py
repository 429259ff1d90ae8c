"""The license gate example plugin in process: which metadata counts as a license, and that a
push is gated like an upload (the e2e test drives it with real twine and devpi-client)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from devpi_core.testing.dists import DistSpec, make_doczip, make_wheel

SOURCE = Path(__file__).parent.parent / "e2e" / "data" / "devpi-core-license-gate"
REFUSAL = "no license in its metadata"


@pytest.fixture
def gate_module(monkeypatch):
    monkeypatch.syspath_prepend(str(SOURCE))
    module = importlib.import_module("devpi_core_license_gate")
    yield module
    for name in [name for name in sys.modules if name.startswith("devpi_core_license_gate")]:
        del sys.modules[name]


@pytest.fixture
def alice(make_app, gate_module):
    client = make_app(modules=(("license_gate", gate_module),))
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.create_index("alice/prod")
    return client


@pytest.mark.parametrize(
    ("lines", "form"),
    [
        (("License-Expression: MIT",), {}),  # read from the wheel: twine may not send it
        (("License: BSD-3-Clause",), {}),
        (("Classifier: License :: OSI Approved :: MIT License",), {}),
        ((), {"license_expression": "Apache-2.0"}),
        ((), {"classifiers": "License :: Public Domain"}),
    ],
)
def test_any_license_field_lets_a_release_through(alice, lines, form):
    wheel = make_wheel(DistSpec("licensed", "1.0", extra_metadata=lines))
    assert alice.upload("alice/dev", wheel, **form).status_int == 200
    assert alice.simple_filenames("alice/dev", "licensed") == [wheel.filename]


@pytest.mark.parametrize("form", [{}, {"license": "UNKNOWN"}, {"license": "  "},
                                  {"classifiers": "Programming Language :: Python"}])
def test_a_release_without_a_license_is_refused(alice, form):
    wheel = make_wheel(DistSpec("bare", "1.0"))
    response = alice.upload("alice/dev", wheel, status=400, **form)
    assert REFUSAL in response.status
    assert alice.get_json("/alice/dev/bare", status=404)


def test_documentation_passes_and_a_push_is_gated(alice):
    wheel = make_wheel(DistSpec("pkg", "1.0"))
    alice.upload("alice/dev", wheel, license="MIT")
    docs = alice.app.post(
        "/alice/dev/",
        params=[(":action", "doc_upload"), ("name", "pkg"), ("version", "1.0")],
        upload_files=[("content", "pkg.zip", make_doczip())],
        headers=alice._headers(json_accept=False),
    )
    assert docs.status_int == 200
    push = {"name": "pkg", "version": "1.0", "targetindex": "alice/prod"}
    assert alice.request("POST", "/alice/dev", push).status_int == 200
    # the metadata registered again without a license: its release may no longer travel
    alice.upload("alice/dev", wheel, action="submit")
    alice.create_index("alice/prod2")
    refused = alice.request("POST", "/alice/dev", {**push, "targetindex": "alice/prod2"},
                            status=400)
    assert f"{wheel.filename}: {REFUSAL}" in refused.json["message"]
    assert alice.get_json("/alice/prod2/pkg", status=404)
