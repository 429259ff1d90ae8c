"""A plugin's test suite loads only the plugins it declares it needs (``plugins_needed``)."""

from __future__ import annotations

import pytest


@pytest.fixture
def plugins_needed() -> tuple[str, ...]:
    return ("stages", "fsstore", "passwd")


def test_make_app_loads_only_the_plugins_needed(make_app):
    client = make_app()
    client.login("root", "")
    refused = client.create_index("root/m", type="mirror", status=400)
    assert "available: stage" in refused.json["message"]
    client.create_index("root/dev")


def test_a_test_that_chooses_its_plugins_keeps_its_choice(make_app):
    client = make_app({"plugins": {"disabled": ["webui"]}})
    client.login("root", "")
    client.create_index("root/m", type="mirror", mirror_url="http://127.0.0.1:1/simple/")
