"""Record the terminal session that ``docs/quickstart.rst`` shows, from a real run.

Run it inside a private network namespace, so port 3141 is free and nothing leaves the machine::

    unshare -n sh -c 'ip link set lo up && .venv/bin/python docs/record_quickstart.py \\
        --upstream-wheel /path/to/setuptools-*.whl --upstream-wheel /path/to/packaging-*.whl'

root/pypi mirrors a local Simple API index (``devpi_core.testing.upstream.FakeUpstream``) that
serves the given, unmodified wheels from the public index; everything else is what a user
types. The script writes one reStructuredText literal block per step to standard output.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from devpi_core.testing.dists import Dist
from devpi_core.testing.plugin import ServerProcess, clean_env, write_config
from devpi_core.testing.upstream import FakeUpstream

# A fixed, readable path: it appears in the recorded output.
WORK = Path("/tmp/quickstart")  # noqa: S108 - recreated from scratch on every run
BIN = Path(sys.executable).parent
PASSWORD = "wonderland-42"  # noqa: S105 - the example password the page shows
PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "hello-devpi"
version = "0.1"
description = "Says hello from a private index"
dependencies = ["packaging"]
"""


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _env(*, venv: Path | None = None) -> dict[str, str]:
    path = [str(BIN), os.environ.get("PATH", "")]
    extra: dict[str, str] = {}
    if venv is not None:
        path.insert(0, str(venv / "bin"))
        extra["VIRTUAL_ENV"] = str(venv)
    env = clean_env(home=WORK / "home", PATH=os.pathsep.join(path), **extra)
    env.pop("PIP_CONFIG_FILE")  # pip reads the config `devpi use --set-cfg` writes
    return env


def _step(shown: str, args: list[str], *, cwd: Path, venv: Path | None = None) -> None:
    """Run ``args`` and print ``shown`` with the output as a console block."""
    completed = subprocess.run(
        args, cwd=cwd, env=_env(venv=venv), capture_output=True, text=True, timeout=300, check=False
    )
    prompt = "(venv) $" if venv is not None else "$"
    block = f"{prompt} {shown}\n{completed.stdout}{completed.stderr}"
    _out(".. code-block:: console\n\n" + textwrap.indent(block.rstrip("\n"), "   ") + "\n\n")
    if completed.returncode != 0:
        raise SystemExit(f"{shown!r} failed with exit status {completed.returncode}")


def _project(directory: Path) -> None:
    (directory / "hello_devpi").mkdir(parents=True)
    (directory / "hello_devpi" / "__init__.py").write_text(
        "from packaging.version import Version\n\n\n"
        "def hello() -> str:\n"
        "    return f\"hello from {Version('0.1')}\"\n"
    )
    (directory / "pyproject.toml").write_text(PYPROJECT)


def _session(upstream: FakeUpstream) -> None:
    server = ServerProcess(
        WORK / "server",
        write_config(
            WORK / "devpi-core.yml",
            {
                # the local stand-in for the public index runs on loopback, which mirrors may
                # not reach unless the configuration allows it
                "server": {"outbound_allow": ["127.0.0.1"]},
                "plugins": {"mirror": {"default_url": upstream.url}},
            },
        ),
    )
    server.start("--port", "3141")
    try:
        _out(
            f".. code-block:: console\n\n   $ devpi-core serve --serverdir {WORK / 'server'}\n"
            + textwrap.indent("".join(server.output).rstrip("\n"), "   ")
            + "\n\n"
        )
        devpi = str(BIN / "devpi")
        project = WORK / "hello-devpi"
        _project(project)
        steps = [
            ("devpi use http://127.0.0.1:3141", ["use", "http://127.0.0.1:3141"]),
            (
                f"devpi user -c alice password={PASSWORD} email=alice@example.com",
                ["user", "-c", "alice", f"password={PASSWORD}", "email=alice@example.com"],
            ),
            (
                f"devpi login alice --password {PASSWORD}",
                ["login", "alice", "--password", PASSWORD],
            ),
            ("devpi index -c dev bases=root/pypi", ["index", "-c", "dev", "bases=root/pypi"]),
            ("devpi use --set-cfg alice/dev", ["use", "--set-cfg", "alice/dev"]),
        ]
        for shown, args in steps:
            _step(shown, [devpi, *args], cwd=WORK)
        _step("devpi upload", [devpi, "upload"], cwd=project)
        _step("devpi list hello-devpi", [devpi, "list", "hello-devpi"], cwd=project)
        subprocess.run([sys.executable, "-m", "venv", str(WORK / "venv")], check=True, timeout=300)
        _step(
            "devpi install hello-devpi",
            [devpi, "install", "hello-devpi"],
            cwd=WORK,
            venv=WORK / "venv",
        )
        _step(
            'python -c "import hello_devpi; print(hello_devpi.hello())"',
            ["python", "-c", "import hello_devpi; print(hello_devpi.hello())"],
            cwd=WORK,
            venv=WORK / "venv",
        )
        _step(
            "devpi index -c prod bases=root/pypi volatile=False",
            [devpi, "index", "-c", "prod", "bases=root/pypi", "volatile=False"],
            cwd=WORK,
        )
        _step(
            "devpi push hello-devpi==0.1 alice/prod",
            [devpi, "push", "hello-devpi==0.1", "alice/prod"],
            cwd=WORK,
        )
        _step(
            "devpi list --index alice/prod hello-devpi",
            [devpi, "list", "--index", "alice/prod", "hello-devpi"],
            cwd=WORK,
        )
    finally:
        server.stop()


def main() -> int:
    """Record the session; ``--upstream-wheel`` files are what root/pypi's upstream serves."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--upstream-wheel", action="append", type=Path, default=[])
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "home").mkdir(parents=True)
    with FakeUpstream() as upstream:
        for wheel in args.upstream_wheel:
            upstream.add(wheel.name.split("-")[0], Dist(wheel.name, wheel.read_bytes()))
        started = time.monotonic()
        _session(upstream)
    sys.stderr.write(f"recorded in {time.monotonic() - started:.1f}s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
