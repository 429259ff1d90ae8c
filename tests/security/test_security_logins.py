"""Failed logins are limited; /+login takes passwords only; unknown users cost a hash too.

Before: every wrong password cost an argon2 hash (about 95 ms and 64 MiB) with no limit, an
unknown user answered at once (an oracle for user names), and ``POST /+login`` swapped a login
token for a fresh one, so a stolen token lived until the password changed.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import threading

import pytest
import requests
from devpi_core_passwd.hasher import HashGate
from devpi_core_passwd.throttle import FailureBuckets

from devpi_core import hookimpl, services
from devpi_core.errors import ServiceUnavailable
from devpi_core.interfaces import PasswordHasher
from devpi_core.testing.dists import DistSpec, make_wheel
from devpi_core.testing.plugin import bin_path, clean_env

JSON = {"Accept": "application/json"}
LIMITS = {
    "login_failures_per_client": 3,
    "login_failures_per_user": 5,
    "login_failure_window": 3600,
}


def basic(user: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}", **JSON}


def login(
    client, user: str, password: str, *, addr: str = "127.0.0.1", real_ip: str = "",
    status: int | str = "*",
):
    return client.app.post_json(
        "/+login",
        {"user": user, "password": password},
        headers={**JSON, "X-Real-IP": real_ip} if real_ip else JSON,
        extra_environ={"REMOTE_ADDR": addr},
        status=status,
        expect_errors=True,
    )


@pytest.fixture
def limited(make_app):
    client = make_app({"plugins": {"passwd": LIMITS}})
    client.create_user("alice", "right")
    return client


def assert_throttled(response) -> int:
    assert response.status_int == 429
    assert "too many failed logins" in response.json["message"]
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= LIMITS["login_failure_window"]
    return retry_after


# -- per client ------------------------------------------------------------------------------
def test_a_client_gets_429_with_retry_after_after_its_failures(limited):
    for user in ("alice", "bob", "carol"):  # a spray over several names counts per client
        assert login(limited, user, "wrong").status_int == 401
    assert_throttled(login(limited, "dave", "wrong"))
    # even the right password waits: otherwise the limit would not slow guessing
    assert_throttled(login(limited, "alice", "right"))
    # another address is not affected
    assert login(limited, "alice", "right", addr="10.0.0.9").status_int == 200


def test_behind_a_trusted_proxy_failures_count_per_real_client(limited):
    # nginx (on loopback, a trusted proxy) sends every request; X-Real-IP names the client
    for user in ("alice", "bob", "carol"):
        assert login(limited, user, "wrong", real_ip="192.0.2.7").status_int == 401
    assert_throttled(login(limited, "dave", "wrong", real_ip="192.0.2.7"))
    # another client behind the same proxy is not locked out by the first one
    assert login(limited, "alice", "right", real_ip="192.0.2.8").status_int == 200


def test_x_real_ip_from_an_untrusted_peer_is_ignored(limited):
    # a client cannot escape its limit by naming another address itself
    for i, user in enumerate(("alice", "bob", "carol")):
        response = login(limited, user, "wrong", addr="10.0.0.9", real_ip=f"192.0.2.{i}")
        assert response.status_int == 401
    assert_throttled(login(limited, "dave", "wrong", addr="10.0.0.9", real_ip="192.0.2.99"))


def test_basic_auth_on_any_request_is_limited_too(limited):
    for _ in range(3):
        response = limited.app.get("/+api", headers=basic("alice", "wrong"))
        assert response.json["result"]["authstatus"][0] == "noauth"
    response = limited.app.get("/+api", headers=basic("alice", "wrong"), expect_errors=True)
    assert_throttled(response)
    # a browser gets the web UI's error page, with the same header
    page = limited.app.get(
        "/", headers={**basic("alice", "wrong"), "Accept": "text/html"}, expect_errors=True
    )
    assert page.status_int == 429
    assert page.content_type == "text/html"
    assert int(page.headers["Retry-After"]) >= 1
    # anonymous requests from the same client are served as before
    assert limited.app.get("/+api", headers=JSON).status_int == 200


# -- per user --------------------------------------------------------------------------------
def test_a_user_is_limited_across_addresses(limited):
    for number in range(5):
        assert login(limited, "alice", "wrong", addr=f"10.0.1.{number}").status_int == 401
    response = login(limited, "alice", "right", addr="10.0.2.1")
    assert "alice" in response.json["message"]
    assert_throttled(response)
    # other users are not affected
    limited.create_user("bob", "pw")
    assert login(limited, "bob", "pw", addr="10.0.2.1").status_int == 200


def test_a_valid_token_still_works_while_the_password_is_attacked(limited):
    token = limited.login("alice", "right")
    for number in range(5):
        login(limited, "alice", "wrong", addr=f"10.0.3.{number}")
    assert_throttled(login(limited, "alice", "right", addr="10.0.4.1"))
    response = limited.app.get("/+api", headers=basic("alice", token))
    assert response.json["result"]["authstatus"][:2] == ["ok", "alice"]


# -- legitimate clients ----------------------------------------------------------------------
def test_successful_logins_and_basic_auth_never_count(limited):
    assert login(limited, "alice", "wrong").status_int == 401
    for _ in range(10):
        assert login(limited, "alice", "right").status_int == 200
        response = limited.app.get("/+api", headers=basic("alice", "right"))
        assert response.json["result"]["authstatus"][:2] == ["ok", "alice"]
    # two more mistakes are still allowed: only failures take from the bucket
    assert login(limited, "alice", "wrong").status_int == 401
    assert login(limited, "alice", "wrong").status_int == 401
    assert_throttled(login(limited, "alice", "wrong"))


def test_buckets_refill_over_the_window():
    now = [0.0]
    buckets = FailureBuckets(2, 60, clock=lambda: now[0])
    buckets.fail(b"k")
    buckets.fail(b"k")
    assert buckets.wait(b"k") == pytest.approx(30)
    assert buckets.wait(b"other") == 0
    now[0] = 30.0
    assert buckets.wait(b"k") == 0
    buckets.fail(b"k")
    assert buckets.wait(b"k") == pytest.approx(30)
    now[0] = 1000.0
    assert buckets.wait(b"k") == 0
    assert not buckets._buckets  # a full bucket is forgotten


def test_bucket_state_is_bounded():
    buckets = FailureBuckets(1, 60, max_keys=100)
    for number in range(1000):
        buckets.fail(str(number).encode())
    assert len(buckets._buckets) == 100
    assert buckets.wait(b"999") > 0


# -- /+login takes passwords only --------------------------------------------------------------
def test_login_does_not_accept_a_login_token_as_password(client):
    client.create_user("alice", "right")
    token = client.login("alice", "right")
    assert token
    response = login(client, "alice", token)
    assert response.status_int == 401
    # the token itself still authenticates other requests (devpi-client sends it)
    response = client.app.get("/+api", headers=basic("alice", token))
    assert response.json["result"]["authstatus"][:2] == ["ok", "alice"]


# -- unknown users ---------------------------------------------------------------------------
class CountingHasher(PasswordHasher):
    """Plain-text 'hashes' that count the checks; ``block`` holds every check until set."""

    def __init__(self) -> None:
        self.verifies = 0
        self.lock = threading.Lock()
        self.block = threading.Event()
        self.block.set()
        self.entered = threading.Semaphore(0)

    def hash(self, password: str) -> str:
        return f"$plain${password}"

    def verify(self, password: str, pwhash: str) -> bool:
        with self.lock:
            self.verifies += 1
        self.entered.release()
        self.block.wait(10)
        return pwhash == f"$plain${password}"

    def needs_update(self, pwhash: str) -> bool:
        return False


class HasherPlugin:
    def __init__(self, hasher: PasswordHasher) -> None:
        self.hasher = hasher

    @hookimpl(tryfirst=True)
    def devpi_password_hasher(self, settings):
        return self.hasher


@pytest.fixture
def counting(make_app):
    hasher = CountingHasher()
    client = make_app(modules=(("counting", HasherPlugin(hasher)),))
    client.create_user("alice", "right")
    hasher.verifies = 0
    return client, hasher


def test_an_unknown_user_costs_a_password_check(counting):
    client, hasher = counting
    assert login(client, "alice", "wrong").status_int == 401
    assert hasher.verifies == 1
    assert login(client, "nobody", "wrong").status_int == 401
    assert hasher.verifies == 2
    response = client.app.get("/+api", headers=basic("nobody", "x"))
    assert response.json["result"]["authstatus"][0] == "noauth"
    assert hasher.verifies == 3


def test_concurrent_checks_of_the_same_password_share_one_hash(counting):
    client, hasher = counting
    hasher.block.clear()
    results: list[int] = []

    def fetch() -> None:
        response = client.app.get("/+api", headers=basic("alice", "right"))
        results.append(len(response.json["result"]["authstatus"][1]))

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    try:
        assert hasher.entered.acquire(timeout=10)  # the first check is running
        # while it runs, no second check of the same pair starts (each did, before)
        assert not hasher.entered.acquire(timeout=2)
    finally:
        hasher.block.set()
        for thread in threads:
            thread.join(timeout=20)
    assert results == [5] * 8  # all eight are alice
    assert hasher.verifies == 1


# -- concurrent hashes -------------------------------------------------------------------------
def test_hash_gate_bounds_running_and_waiting_hashes():
    gate = HashGate(1, 1, wait=0.2)
    release = threading.Event()
    inside = threading.Event()

    def hold() -> None:
        with gate.slot():
            inside.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(10)
    # one may wait; it gives up after `wait` seconds with a 503
    with pytest.raises(ServiceUnavailable) as waited, gate.slot():
        pass
    assert waited.value.status == 503
    assert waited.value.retry_after == 1
    release.set()
    holder.join(10)
    with gate.slot():
        pass  # free again


def test_hash_gate_refuses_at_once_beyond_the_queue():
    gate = HashGate(1, 0, wait=30)
    with gate.slot(), pytest.raises(ServiceUnavailable), gate.slot():
        pass


def test_a_busy_hasher_answers_503_with_retry_after(make_app):
    client = make_app({"plugins": {"passwd": {"max_concurrent_hashes": 1, "hash_queue": 0}}})
    client.create_user("alice", "right")
    gate = services.users(client.app.app.registry).hasher.gate
    with gate.slot():
        response = login(client, "alice", "right")
    assert response.status_int == 503
    assert response.headers["Retry-After"] == "1"
    assert "try again" in response.json["message"]
    assert login(client, "alice", "right").status_int == 200


# -- real clients --------------------------------------------------------------------------------
def run_tool(args, home) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], env=clean_env(home), capture_output=True,
                            text=True, timeout=180, check=False)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.e2e
def test_twine_pip_and_uv_with_passwords_are_unaffected(devpi_server, tmp_path):
    # the strictest hash bound: one at a time, none waiting; parallel requests with the same
    # password must still pass (one hash, then the credential cache)
    server = devpi_server({"plugins": {"passwd": {
        "max_concurrent_hashes": 1, "hash_queue": 0, "login_failures_per_client": 3}}})
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    assert session.put(f"{server.url}/alice", json={"password": "123"}).status_code == 201
    for _ in range(2):  # a typo or two earlier do not get in the way
        assert session.get(f"{server.url}/+api", auth=("alice", "typo")).status_code == 200
    session.auth = ("alice", "123")
    response = session.put(f"{server.url}/alice/priv", json={"acl_read": ["alice"]})
    assert response.status_code == 200, response.text
    deps = [make_wheel(DistSpec(f"lgdep{n}", "1.0")) for n in range(6)]
    app = make_wheel(DistSpec("lgapp", "1.0", requires_dist=[d.filename.split("-")[0]
                                                            for d in deps]))
    dist = tmp_path / "dist"
    dist.mkdir()
    files = [d.write(dist) for d in (app, *deps)]
    run_tool([bin_path("twine"), "upload", "--non-interactive", "--disable-progress-bar",
              "--repository-url", f"{server.url}/alice/priv/", "-u", "alice", "-p", "123",
              *files], tmp_path)
    host = server.url.removeprefix("http://")
    simple = f"http://alice:123@{host}/alice/priv/+simple/"
    run_tool([sys.executable, "-m", "pip", "download", "--no-cache-dir", "--no-deps",
              "--index-url", simple, "-d", tmp_path / "pip", "lgapp"], tmp_path)
    run_tool([bin_path("uv"), "pip", "install", "--no-cache", "--python", sys.executable,
              "--index-url", simple, "--target", tmp_path / "uv", "lgapp"], tmp_path)
    assert (tmp_path / "pip" / app.filename).exists()
    assert all((tmp_path / "uv" / f"lgdep{n}").is_dir() for n in range(6))
    server.wait_for(f"/{deps[-1].filename}", timeout=10)
    refused = [line for line in server.output if " 429 " in line or " 503 " in line]
    assert refused == []
