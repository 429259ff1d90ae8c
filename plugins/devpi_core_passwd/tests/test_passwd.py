"""The passwd plugin: argon2 hashes, login tokens, credential parsing and the credential cache."""

from __future__ import annotations

import base64
import time

import pytest
from webob import Request

import devpi_core_passwd
from devpi_core import services
from devpi_core.records import Credentials
from devpi_core_passwd import credentials, tokens
from devpi_core_passwd.cache import MAX_ENTRIES, CredentialCache
from devpi_core_passwd.hasher import Argon2Hasher
from devpi_core_passwd.service import LocalAuth

SECRET = b"s" * 32


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- hashing --------------------------------------------------------------------------------
def test_argon2id_hashes_verify_and_detect_old_parameters():
    hasher = Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1)
    pwhash = hasher.hash("pässword")
    assert pwhash.startswith("$argon2id$")
    assert hasher.verify("pässword", pwhash)
    assert not hasher.verify("password", pwhash)
    assert not hasher.verify("x", "not-a-hash")
    assert not hasher.needs_update(pwhash)
    stronger = Argon2Hasher(time_cost=2, memory_cost=16, parallelism=1)
    assert stronger.needs_update(pwhash)
    assert stronger.verify("pässword", pwhash)


# -- tokens ---------------------------------------------------------------------------------
def test_token_roundtrip_and_claims():
    token = tokens.issue(SECRET, "alice", "$argon2id$h1", now=1000)
    assert tokens.looks_like_token(token)
    claims = tokens.verify(SECRET, token, max_age=60, now=1030)
    assert claims is not None
    assert claims.username == "alice"
    assert claims.pwfingerprint == tokens.fingerprint(SECRET, "$argon2id$h1")
    assert claims.pwfingerprint != tokens.fingerprint(SECRET, "$argon2id$h2")


def test_expired_future_and_foreign_tokens_fail():
    token = tokens.issue(SECRET, "alice", "h", now=1000)
    assert tokens.verify(SECRET, token, max_age=60, now=1061) is None
    assert tokens.verify(SECRET, token, max_age=60, now=900) is None
    assert tokens.verify(b"o" * 32, token, max_age=60, now=1001) is None
    payload, signature = token.split(".")
    assert tokens.verify(SECRET, f"{payload}x.{signature}", max_age=60, now=1001) is None
    assert tokens.verify(SECRET, "garbage", max_age=60, now=1001) is None


@pytest.mark.parametrize("password", ["123", "hunter2", "pass.word", "a.b"])
def test_ordinary_passwords_do_not_look_like_tokens(password):
    assert not tokens.looks_like_token(password)


# -- credentials ----------------------------------------------------------------------------
def test_credentials_from_headers():
    request = Request.blank(
        "/", headers={"X-Devpi-Auth": b64("alice:tok"), "Authorization": "Basic " + b64("bob:pw")}
    )
    assert credentials.from_request(request) == Credentials("alice", "tok", "x-devpi-auth")
    request = Request.blank("/", headers={"Authorization": "Basic " + b64("bob:p:w")})
    assert credentials.from_request(request) == Credentials("bob", "p:w", "basic")
    latin = base64.b64encode("jörg:pw".encode("latin-1")).decode()
    assert (
        credentials.from_request(
            Request.blank("/", headers={"Authorization": "Basic " + latin})
        ).username
        == "jörg"
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer abc"},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Basic " + b64("nocolon")},
        {"Authorization": "Basic " + b64(":emptyuser")},
        {"X-Devpi-Auth": "%%%"},
    ],
)
def test_no_or_broken_credentials(headers):
    assert credentials.from_request(Request.blank("/", headers=headers)) is None


# -- the credential cache -------------------------------------------------------------------
def test_cache_remembers_by_keyed_digest_only():
    cache = CredentialCache(ttl=60)
    cache.remember("alice", "secret", "$h1")
    assert cache.verified("alice", "secret", "$h1")
    assert not cache.verified("alice", "other", "$h1")
    assert not cache.verified("bob", "secret", "$h1")
    assert not cache.verified("alice", "secret", "$h2")  # the password changed
    assert not cache.verified("alice", "secret", "$h1")  # and the stale entry is gone
    stored = repr(cache._entries)
    assert "secret" not in stored
    assert "alice" not in stored


def test_cache_keys_differ_between_processes():
    one, two = CredentialCache(ttl=60), CredentialCache(ttl=60)
    assert one._digest("alice", "secret") != two._digest("alice", "secret")


def test_cache_entries_expire(monkeypatch):
    cache = CredentialCache(ttl=10)
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    cache.remember("alice", "secret", "$h")
    now[0] += 9
    assert cache.verified("alice", "secret", "$h")
    now[0] += 2
    assert not cache.verified("alice", "secret", "$h")


def test_cache_is_bounded_and_can_be_off():
    cache = CredentialCache(ttl=60)
    for n in range(MAX_ENTRIES + 5):
        cache.remember(f"u{n}", "pw", "$h")
    assert len(cache._entries) == MAX_ENTRIES
    assert not cache.verified("u0", "pw", "$h")
    assert cache.verified(f"u{MAX_ENTRIES + 4}", "pw", "$h")
    off = CredentialCache(ttl=0)
    off.remember("alice", "pw", "$h")
    assert not off.verified("alice", "pw", "$h")


class CountingHasher(Argon2Hasher):
    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified = 0

    def verify(self, password: str, pwhash: str) -> bool:
        self.verified += 1
        return super().verify(password, pwhash)


def _client_with_counting_hasher(make_app, cache_seconds):
    client = make_app({"plugins": {"passwd": {"credential_cache_seconds": cache_seconds}}})
    hasher = CountingHasher()
    users = services.users(client.app.app.registry)
    users._hasher = lambda: hasher
    client.create_user("alice", "secret")
    return client, hasher


def _basic_requests(client, count, password="secret"):
    headers = {"Accept": "application/json", "Authorization": "Basic " + b64(f"alice:{password}")}
    return [
        client.app.get("/+api", headers=headers).json["result"]["authstatus"][0]
        for _ in range(count)
    ]


def test_repeated_basic_auth_hashes_once(make_app):
    client, hasher = _client_with_counting_hasher(make_app, 300)
    assert _basic_requests(client, 20) == ["ok"] * 20
    assert hasher.verified == 1
    assert _basic_requests(client, 3, "wrong") == ["noauth"] * 3
    assert hasher.verified == 4  # failures are never cached


def test_without_the_cache_every_request_hashes(make_app):
    client, hasher = _client_with_counting_hasher(make_app, 0)
    assert _basic_requests(client, 5) == ["ok"] * 5
    assert hasher.verified == 5


def test_tokens_need_no_hashing(make_app):
    client, hasher = _client_with_counting_hasher(make_app, 0)
    token = client.login("alice", "secret")
    before = hasher.verified
    headers = {"Accept": "application/json", "Authorization": "Basic " + b64(f"alice:{token}")}
    for _ in range(5):
        assert client.app.get("/+api", headers=headers).json["result"]["authstatus"][0] == "ok"
    assert hasher.verified == before


def test_outdated_hash_is_upgraded_on_login(make_app):
    client = make_app()
    users = services.users(client.app.app.registry)
    weak = Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1)
    client.create_user("alice", "secret")
    strong = Argon2Hasher(time_cost=2, memory_cost=16, parallelism=1)
    users._hasher = lambda: strong
    old = users.get("alice")["pwhash"]
    assert weak.verify("secret", old)
    assert client.login("alice", "secret")
    new = users.get("alice")["pwhash"]
    assert new != old
    assert not strong.needs_update(new)


def test_plugin_declares_its_settings():
    [section] = devpi_core_passwd.devpi_config_sections()
    assert section.name == "passwd"
    assert set(section.defaults) == set(section.schema) == set(section.help)


def test_unknown_user_or_missing_hash_is_anonymous(make_app):
    client = make_app()
    auth = services.lookup(client.app.app.registry, LocalAuth)
    request = Request.blank("/")
    request.registry = client.app.app.registry
    assert auth.authenticate(request, Credentials("ghost", "x")) is None
