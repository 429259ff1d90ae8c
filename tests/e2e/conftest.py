"""Fixtures shared by the devpi-client end-to-end modules.

``server`` is one ``devpi-core serve`` per module (tests use unique user and index names, so
they do not depend on each other's order); ``devpi`` is devpi-client with a fresh client
directory and home; ``user`` is a logged-in user with an index in use; ``api`` reads the
server's state over its JSON API. A module may override ``server`` (with a mirror, say).
"""

from __future__ import annotations

import pytest

from devpi_core.testing.devpiclient import DevpiCLI, ServerAPI, running_server, setup_user


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("devpi-core")) as process:
        yield process


@pytest.fixture
def devpi(tmp_path):
    return DevpiCLI.create(tmp_path)


@pytest.fixture
def user(server, devpi):
    return setup_user(devpi, server.url)


@pytest.fixture
def api(server):
    client = ServerAPI(server.url)
    yield client
    client.close()
