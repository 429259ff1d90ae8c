"""Running contrib/cluster/local-cluster.sh from tests: the :class:`Cluster` it started (kill,
restart a node, HAProxy's view), and the small HTTP helpers the cluster modules share.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from devpi_core.testing.devpiclient import unique
from devpi_core.testing.plugin import bin_path, clean_env, missing_component, tool_path

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from devpi_core.testing.dists import Dist

SCRIPT = Path(__file__).resolve().parents[2] / "contrib" / "cluster" / "local-cluster.sh"
PASSWORD = "secret"
DEADLINE = 20.0


@dataclass
class Cluster:
    """The running cluster: what the script printed, and how to kill and restart a node."""

    directory: Path
    values: dict[str, str]
    env: dict[str, str]
    runner: Sequence[str] = ()  # a prefix (runuser -u USER --) to run the script as another user

    @property
    def lb(self) -> str:
        return self.values["LB_URL"]

    @property
    def nodes(self) -> int:
        return sum(1 for key in self.values if key.endswith("_PID") and key.startswith("NODE"))

    def node(self, i: int) -> str:
        return self.values[f"NODE{i}_URL"]

    def pid(self, i: int) -> int:
        return int(self.values[f"NODE{i}_PID"])

    def script(self, *args: str) -> str:
        done = subprocess.run(
            [*self.runner, "bash", str(SCRIPT), *args], env=self.env, capture_output=True,
            text=True, timeout=120, check=False,
        )
        assert done.returncode == 0, f"local-cluster.sh {args}: {done.stdout}{done.stderr}"
        return done.stdout

    def restart(self, i: int) -> None:
        self.values.update(parse(self.script("restart-node", str(self.directory), str(i))))

    def postgres(self, action: str) -> None:
        """``stop``, ``start`` or ``restart`` the cluster's PostgreSQL (the nodes keep running)."""
        self.script(f"{action}-postgres", str(self.directory))

    def kill(self, i: int) -> None:
        """SIGKILL node ``i`` and wait until it is gone."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid(i), 9)
        wait_for(lambda: gone(self.pid(i)), f"node {i} still runs after SIGKILL")

    def states(self) -> dict[str, str]:
        """HAProxy's view: node name -> UP/DOWN/..."""
        response = requests.get(self.values["STATS_URL"] + ";csv", timeout=5)
        rows = csv.DictReader(io.StringIO(response.text.lstrip("# ")))
        return {r["svname"]: r["status"] for r in rows if r["pxname"] == "nodes"}

    def wait_state(self, name: str, state: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while (seen := self.states().get(name)) != state:
            assert time.monotonic() < deadline, f"HAProxy still sees {name} {seen}, not {state}"
            time.sleep(0.05)

    def fsck(self) -> subprocess.CompletedProcess[str]:
        """``devpi-core fsck`` with the nodes' configuration."""
        return subprocess.run(
            [bin_path("devpi-core"), "fsck", "--config", self.values["CONFIG"],
             "--serverdir", str(self.directory / "node1")],
            env=clean_env(), capture_output=True, text=True, timeout=120, check=False,
        )

    def assert_fsck_clean(self) -> None:
        done = self.fsck()
        assert done.returncode == 0, done.stdout + done.stderr


def parse(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


def require_components() -> None:
    """Skip (fail under CI=true) without HAProxy, PostgreSQL, moto and the store extras."""
    tool_path("haproxy")
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb") and not os.path.exists("/usr/bin/initdb"):
        missing_component("PostgreSQL (initdb) is not installed: apt-get install postgresql")
    bin_path("moto_server")
    for module in ("psycopg", "psycopg_pool", "boto3"):
        try:
            __import__(module)
        except ImportError:
            missing_component(f"{module} is not installed: pip install -e '.[test]'")


@contextlib.contextmanager
def running_cluster(
    directory: Path, env: dict[str, str], nodes: int = 3, runner: Sequence[str] = ()
) -> Iterator[Cluster]:
    """``local-cluster.sh start`` in ``directory``; ``stop`` afterwards, whatever happened."""
    made = Cluster(directory, {}, env, tuple(runner))
    try:
        made.values = parse(made.script("start", str(directory), str(nodes)))
        yield made
    finally:
        made.script("stop", str(directory))


def gone(pid: int) -> bool:
    """The process has exited (a zombie not yet reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return True
    return state == "Z"


def wait_for(condition: Callable[[], object], message: str, timeout: float = DEADLINE) -> None:
    """Poll ``condition()`` until it is true; fail with ``message`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


def new_index(url: str, **options: object) -> tuple[str, str]:
    """A fresh user with an index (created through ``url``): (user, user/index)."""
    user = unique("c")
    created = requests.put(f"{url}/{user}", json={"password": PASSWORD}, timeout=30)
    assert created.status_code == 201, created.text
    created = requests.put(f"{url}/{user}/dev", json=options, auth=(user, PASSWORD), timeout=30)
    assert created.status_code == 200, created.text
    return user, f"{user}/dev"


def upload(url: str, user: str, index: str, dist: Dist, timeout: float = 60) -> requests.Response:
    name, version = dist.filename.split("-")[:2]
    return requests.post(
        f"{url}/{index}/",
        data={":action": "file_upload", "name": name, "version": version,
              "protocol_version": "1"},
        files={"content": (dist.filename, dist.content)},
        auth=(user, PASSWORD),
        timeout=timeout,
    )


def listed(url: str, index: str, project: str) -> tuple[int, str]:
    response = requests.get(f"{url}/{index}/+simple/{project}/", timeout=30)
    return response.status_code, response.text


def run_tool(args: list[str], home: Path) -> None:
    done = subprocess.run(
        [str(a) for a in args], env=clean_env(home), capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
