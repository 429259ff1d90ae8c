"""JSON bodies: deep nesting, lone surrogates and non-finite numbers are a 400, never a 500.

Each was a 500 with a logged traceback (a RecursionError in the parser, or a
UnicodeEncodeError when the hasher or the store met the surrogate), and nothing may be stored.
"""

from __future__ import annotations

import pytest

from devpi_core import services
from devpi_core.testing.dists import DistSpec, make_wheel

JSON = "application/json"
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def alice(make_app):
    client = make_app()
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.upload("alice/dev", make_wheel(DistSpec("pkg", "1.0")))
    return client


def send(client, method: str, path: str, body: str, content_type: str = JSON):
    headers = {**client._headers(), "Content-Type": content_type}
    return client.app.request(
        path, method=method, body=body.encode(), headers=headers, expect_errors=True
    )


def custom_data(value: str) -> str:
    return '{"custom_data": ' + value + "}"


def stored(client) -> dict:
    with services.metadata_store(client.app.app.registry).read() as tx:
        return dict(tx.items(""))


def assert_400(response, words: str) -> None:
    assert response.status_int == 400, response
    assert response.content_type == JSON
    assert words in response.json["message"]


# every view that takes a JSON body, with a place in its body for a value
ENDPOINTS = [
    ("PUT", "/bob", '{"password": "123", "custom_data": %s}'),
    ("PATCH", "/alice", '{"custom_data": %s}'),
    ("POST", "/+login", '{"user": "alice", "password": %s}'),
    ("PUT", "/alice/new", '{"custom_data": %s}'),
    ("PATCH", "/alice/dev", '{"custom_data": %s}'),
    ("PATCH", "/alice/dev", '["description=a", %s]'),
    ("POST", "/alice/dev", '{"name": "pkg", "version": "1.0", "targetindex": %s}'),
    ("PATCH", "/alice/dev/pkg/1.0", '{"yanked": %s}'),
]


@pytest.mark.parametrize(("method", "path", "template"), ENDPOINTS)
def test_deeply_nested_body_is_a_400(alice, method, path, template):
    before = stored(alice)
    response = send(alice, method, path, template % DEEP)
    assert_400(response, "nested deeper than 64 levels")
    assert stored(alice) == before


@pytest.mark.parametrize(("method", "path", "template"), ENDPOINTS)
def test_lone_surrogate_is_a_400(alice, method, path, template):
    before = stored(alice)
    response = send(alice, method, path, template % '"x\\ud800y"')
    assert_400(response, "lone surrogate")
    assert stored(alice) == before


def test_lone_surrogate_as_raw_bytes_and_in_keys(alice):
    # the parser also turns undecodable UTF-8 of a surrogate (ED A0 80) into one
    headers = {**alice._headers(), "Content-Type": JSON}
    raw = b'{"password": "123", "title": "\xed\xa0\x80"}'
    response = alice.app.put("/bob", raw, headers=headers, expect_errors=True)
    assert_400(response, "lone surrogate")
    response = send(alice, "PATCH", "/alice/dev", '{"custom_data": {"\\udfff": 1}}')
    assert_400(response, "lone surrogate")
    assert alice.get("/bob", status=404)


def test_paired_surrogates_are_text(alice):
    # an escaped emoji is a surrogate pair that the parser joins: valid, stored, answered
    response = send(alice, "PATCH", "/alice/dev", '{"title": "snake \\ud83d\\udc0d"}')
    assert response.status_int == 200, response
    assert alice.get_json("/alice/dev")["result"]["title"] == "snake \U0001f40d"


def test_nesting_just_over_the_limit_is_refused_and_under_it_kept(alice):
    refused = send(alice, "PATCH", "/alice/dev", custom_data("[" * 64 + "]" * 64))
    assert_400(refused, "nested deeper than 64 levels")
    kept = send(alice, "PATCH", "/alice/dev", custom_data("[" * 63 + "]" * 63))
    assert kept.status_int == 200, kept


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_a_400(alice, constant):
    response = send(alice, "PATCH", "/alice/dev", custom_data(constant))
    assert_400(response, f"{constant} is not a JSON number")
    assert "custom_data" not in alice.get_json("/alice/dev")["result"]


@pytest.mark.parametrize("body", ["[]", '"text"', "1", "null", "true"])
@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", "/bob"), ("PATCH", "/alice"), ("POST", "/+login"), ("POST", "/alice/dev")],
)
def test_non_object_where_an_object_is_expected_is_a_400(alice, method, path, body):
    response = send(alice, method, path, body)
    assert_400(response, "expected a JSON object")


def test_many_small_values_are_fine(alice):
    # the checks walk the value without recursion: a wide body is not a deep one
    wide = "[" + ", ".join(['{"a": ["b", "c"]}'] * 20_000) + "]"
    response = send(alice, "PATCH", "/alice/dev", custom_data(wide))
    assert response.status_int == 200, response
    assert len(alice.get_json("/alice/dev")["result"]["custom_data"]) == 20_000
