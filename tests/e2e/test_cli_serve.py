"""``devpi-core serve`` as a user runs it: start-up, what it prints, clean shutdown, restarts."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import signal
import subprocess
import sys

import pytest
import requests
from cli_run import login, upload

from devpi_core.testing.dists import DistSpec, make_wheel
from devpi_core.testing.plugin import clean_env

pytestmark = pytest.mark.e2e


@pytest.mark.pkgcheck
def test_serve_initialises_announces_and_stops_cleanly(devpi_server):
    server = devpi_server()
    assert (server.serverdir / ".nodeinfo").exists()
    assert (server.serverdir / "devpi-core.yml").exists()
    server.wait_for("export PIP_INDEX_URL")
    first_lines = [line for line in server.output if not line.startswith("20")]  # skip log lines
    assert first_lines[0].startswith("devpi-core ")
    assert f"serving {server.serverdir} on {server.url}/" in first_lines[0]
    simple = f"{server.url}/root/pypi/+simple/"  # the mirror plugin's default index
    assert first_lines[1].strip() == f"export PIP_INDEX_URL={simple} UV_DEFAULT_INDEX={simple}"
    assert "initialised" in server.log()
    assert "user root, index root/pypi" in server.log()

    api = requests.get(f"{server.url}/+api", headers={"Accept": "application/json"}, timeout=10)
    assert api.status_code == 200
    assert api.json()["result"]["login"] == f"{server.url}/+login"
    assert api.headers["X-DEVPI-API-VERSION"] == "2"

    assert server.stop() == 0  # SIGTERM
    assert server.output[-1].strip() == "devpi-core stopped"
    assert "Traceback" not in server.log()


def test_ctrl_c_stops_cleanly(devpi_server):
    server = devpi_server()
    assert server.stop(signal.SIGINT) == 0
    assert server.output[-1].strip() == "devpi-core stopped"
    assert "Traceback" not in server.log()


def test_the_announced_line_names_an_existing_index(devpi_server):
    server = devpi_server({"plugins": {"disabled": ["mirror"]}})  # no root/pypi
    assert server.wait_for(r"export PIP_INDEX_URL=(\S+) ")[1] == f"{server.url}/USER/INDEX/+simple/"
    token = login(server.url, "root", "")
    requests.put(
        f"{server.url}/root/dev",
        json={},
        timeout=10,
        headers={"X-Devpi-Auth": base64.b64encode(f"root:{token}".encode()).decode()},
    ).raise_for_status()
    server.stop()
    server.output.clear()
    server.start()
    assert server.wait_for(r"export PIP_INDEX_URL=(\S+) ")[1] == f"{server.url}/root/dev/+simple/"
    assert "initialised" not in server.log()  # only a new server directory is initialised


def test_flags_override_the_file(devpi_server):
    server = devpi_server(
        {"server": {"host": "localhost", "outside_url": "https://pkgs.example/"}},
        "--host",
        "127.0.0.1",
        "--offline-mode",
        "--debug",
    )
    assert server.url.startswith("http://127.0.0.1:")
    assert (
        server.wait_for(r"export PIP_INDEX_URL=(\S+) ")[1]
        == "https://pkgs.example/root/pypi/+simple/"
    )
    status = requests.get(f"{server.url}/+status", timeout=10).json()["result"]
    assert status["host"] == "127.0.0.1"
    assert status["outside-url"] == "https://pkgs.example/"
    requests.get(f"{server.url}/+api", timeout=10)
    server.wait_for(r"DEBUG")  # --debug turns on DEBUG records


def test_login_token_survives_a_restart(devpi_server):
    server = devpi_server()
    token = login(server.url, "root", "")
    auth = {
        "X-Devpi-Auth": base64.b64encode(f"root:{token}".encode()).decode(),
        "Accept": "application/json",
    }
    assert (
        requests.get(f"{server.url}/+api", headers=auth, timeout=10).json()["result"]["authstatus"][
            0
        ]
        == "ok"
    )
    secret = (server.serverdir / ".secret").read_bytes()
    server.stop()
    server.start()
    assert (server.serverdir / ".secret").read_bytes() == secret
    result = requests.get(f"{server.url}/+api", headers=auth, timeout=10).json()["result"]
    assert result["authstatus"] == ["ok", "root", []]
    # and it authorises writes, not only reads
    created = requests.put(f"{server.url}/root/after-restart", json={}, headers=auth, timeout=10)
    assert created.status_code == 200, created.text


def test_access_log_lines_carry_the_request_id(devpi_server):
    server = devpi_server()
    requests.get(f"{server.url}/+api", headers={"X-Request-ID": "trace-me-42"}, timeout=10)
    line = server.wait_for(r"\[trace-me-42\] devpi_core\.access: GET /\+api 200 ").string
    assert " - " in line or line.rstrip().endswith("-")  # anonymous
    requests.get(f"{server.url}/nobody", timeout=10)
    line = server.wait_for(r"devpi_core\.access: GET /nobody 404").string
    rid = line.split("[", 1)[1].split("]", 1)[0]
    assert rid not in ("-", "trace-me-42")


def test_no_password_token_or_authorization_in_the_logs(devpi_server, tmp_path):
    server = devpi_server(None, "--debug")
    password = "pw-Very-Secret-123"
    anon = requests.put(
        f"{server.url}/alice",
        json={"password": password},
        headers={"Accept": "application/json"},
        timeout=10,
    )
    assert anon.status_code == 201
    token = login(server.url, "alice", password)
    auth = base64.b64encode(f"alice:{token}".encode()).decode()
    requests.put(
        f"{server.url}/alice/dev", json={}, headers={"X-Devpi-Auth": auth}, timeout=10
    ).raise_for_status()
    wheel = make_wheel(DistSpec("logged", "1.0"))
    assert upload(server.url, "alice/dev", ("alice", password), wheel).status_code == 200
    assert (
        upload(
            server.url, "alice/dev", ("alice", token), make_wheel(DistSpec("logged", "2.0"))
        ).status_code
        == 200
    )
    assert upload(server.url, "alice/dev", ("alice", "wrong-" + password), wheel).status_code == 401
    # pip puts credentials into the URL; they must not reach the log either
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-cache-dir",
            "-d",
            str(tmp_path / "dl"),
            "--index-url",
            server.url.replace("http://", f"http://alice:{password}@") + "/alice/dev/+simple/",
            "logged==1.0",
        ],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        timeout=120,
        check=False,
    )
    assert pip.returncode == 0, pip.stderr
    server.wait_for(r"GET /alice/dev/_f/.*logged-1\.0-py3-none-any\.whl 200")
    server.stop()
    log = server.log()
    assert "POST /+login 200" in log
    assert "POST /alice/dev/ 200" in log
    basic = base64.b64encode(f"alice:{password}".encode()).decode()
    for secret in (password, token, auth, basic, token[:20], "Authorization", "X-Devpi-Auth"):
        assert secret not in log, f"{secret!r} leaked into the log"


@pytest.mark.pkgcheck
def test_pip_installs_from_a_stage(devpi_server, tmp_path):
    server = devpi_server()
    token = login(server.url, "root", "")
    auth = {"X-Devpi-Auth": base64.b64encode(f"root:{token}".encode()).decode()}
    requests.put(f"{server.url}/root/dev", json={}, headers=auth, timeout=10).raise_for_status()
    wheel = make_wheel(DistSpec("served-by-devpi-core", "1.0", module_code="ANSWER = 42\n"))
    dist = wheel.write(tmp_path)
    twine = subprocess.run(
        [
            sys.executable,
            "-m",
            "twine",
            "upload",
            "--non-interactive",
            "--disable-progress-bar",
            "--repository-url",
            f"{server.url}/root/dev/",
            "-u",
            "root",
            "-p",
            token,
            str(dist),
        ],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        timeout=120,
        check=False,
    )
    assert twine.returncode == 0, twine.stdout + twine.stderr
    target = tmp_path / "site"
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--target",
            str(target),
            "--index-url",
            f"{server.url}/root/dev/+simple/",
            "served-by-devpi-core",
        ],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        timeout=120,
        check=False,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert (target / "served_by_devpi_core" / "__init__.py").read_text() == "ANSWER = 42\n"
    # the bytes came from this server
    server.wait_for(r"GET /root/dev/_f/.*/served_by_devpi_core-1\.0-py3-none-any\.whl 200")
    fetched = requests.get(
        f"{server.url}/root/dev/+simple/served-by-devpi-core/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        timeout=10,
    ).json()
    assert fetched["files"][0]["hashes"]["sha256"] == hashlib.sha256(wheel.content).hexdigest()


BAD_URLS = [
    ("/%ff%fe/", "the URL is not valid UTF-8"),
    ("/root/%2e%2e/%2e%2e/etc/passwd", "'.' and '..' are not allowed in URLs"),
    ("/root/pypi/+f/%2E%2E/.secret", "'.' and '..' are not allowed in URLs"),
    ("/a%00b", "NUL byte in URL"),
    ("/+api?q=%ff", "the query string is not valid UTF-8"),
]


def test_bad_urls_over_http_are_400_json(devpi_server):
    server = devpi_server()
    host, port = server.url.removeprefix("http://").split(":")
    for path, message in BAD_URLS:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.putrequest("GET", path, skip_accept_encoding=True)  # sent as is, not normalized
            conn.putheader("Accept", "application/json")
            conn.endheaders()
            response = conn.getresponse()
            body = json.loads(response.read())
        finally:
            conn.close()
        assert (response.status, body) == (400, {"message": message}), path
        assert response.getheader("X-DEVPI-API-VERSION") == "2"
    server.stop()
    assert "Traceback" not in server.log()
