"""A fresh virtual environment with a third-party plugin pip-installed from its source tree.

The environment sees this devpi-core installation through a ``.pth`` file, so installing needs
no network and leaves the test environment untouched; servers run from it as
``python -m devpi_core serve`` (``devpi_server(..., command=[python, "-m", "devpi_core"])``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from devpi_core.testing.plugin import clean_env


def venv_with_plugin(base: Path, source: Path) -> str:
    """Create a venv under ``base``, install the plugin at ``source``; return its python."""
    venv = base / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    # addsitedir (not a plain path line) also runs the .pth files there: editable installs
    # and coverage hooks of the test environment keep working in the plugin's environment.
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    Path(purelib, "_devpi_core_test_environment.pth").write_text(
        "".join(f"import site; site.addsitedir({path!r})\n" for path in ours)
    )
    copy = shutil.copytree(source, base / source.name)  # builds write into it
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--no-cache-dir",
            "--quiet",
            str(copy),
        ],
        capture_output=True,
        text=True,
        env=clean_env(base),
        timeout=300,
        check=False,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return str(python)
