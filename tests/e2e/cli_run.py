"""Running ``devpi-core`` commands as a user would, and checking their one-line errors."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import requests

from devpi_core.testing.plugin import bin_path, clean_env

if TYPE_CHECKING:
    from pathlib import Path

    from devpi_core.testing.dists import Dist

FAST_HASHING = (
    "plugins:\n  passwd:\n    argon2_time_cost: 1\n    argon2_memory_cost: 8\n"
    "    argon2_parallelism: 1\n"
)


def devpi_core(
    *args: str, home: Path, input: str | None = None, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``devpi-core ARGS`` with ``HOME=home`` and a clean environment plus ``env``."""
    return subprocess.run(
        [bin_path("devpi-core"), *args],
        capture_output=True,
        text=True,
        env=clean_env(home, **env),
        input=input,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], status: int, *fragments: str
) -> str:
    """The command failed with ``status`` and one line on stderr holding ``fragments``."""
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def upload(
    url: str, index: str, auth: tuple[str, str], dist: Dist, *, timeout: float = 30
) -> requests.Response:
    """A twine-style upload with HTTP Basic auth."""
    name, version = dist.filename.split("-")[:2]
    form = {":action": "file_upload", "name": name, "version": version, "protocol_version": "1"}
    return requests.post(
        f"{url}/{index}/",
        data=form,
        files={"content": (dist.filename, dist.content)},
        auth=auth,
        timeout=timeout,
    )


def login(url: str, user: str, password: str) -> str:
    """``POST /+login``; the token."""
    response = requests.post(
        f"{url}/+login",
        json={"user": user, "password": password},
        headers={"Accept": "application/json"},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["result"]["password"])
