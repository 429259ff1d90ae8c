"""Importing a devpi-server dump: ``devpi-core import`` beside devpi-server's ``devpi-import``.

A generated dump in devpi-export's format (version 2): 500 projects x 5 versions x (a wheel
and an sdist) = 5,000 files, three users, one index. Each importer runs on the same dump into
a fresh server directory; wall time and resident memory (sampled every 50 ms from /proc, the
process and its children) are reported side by side.

A second phase, ``sqlite+fs -> postgresql+s3``, moves the server the first import built (SQLite
metadata, files on disk) to PostgreSQL (a throw-away server, as the tests start it) and S3
(moto's server on 127.0.0.1): ``devpi-core export`` and ``devpi-core import --config pg-s3.yml``,
each with files/s and peak RSS (of devpi-core; PostgreSQL and moto run as their own processes).

Run: ``.venv/bin/python benchmarks/migration_bench.py [--projects 500] [--skip-devpi]
[--skip-backends]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import threading
import time
from email.utils import formatdate
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from harness import CORE_BIN, PEER_VENV, clean_env, ensure_peer_venv, table, workdir  # noqa: E402

from devpi_core.testing.dists import DistSpec, make_sdist, make_wheel  # noqa: E402
from devpi_core.testing.plugin import write_config  # noqa: E402
from devpi_core.testing.postgres import running_postgres  # noqa: E402
from devpi_core.testing.s3server import start_moto, stop  # noqa: E402

VERSIONS = 5
PWHASH = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def _filedesc(relpath: str, data: bytes, project: str, version: str) -> dict[str, object]:
    return {
        "type": "releasefile", "projectname": project, "version": version, "relpath": relpath,
        "entrymapping": {"hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                         "last_modified": formatdate(1700000000, usegmt=True)},
        "log": [{"what": "upload", "who": "bench", "when": [2023, 11, 14, 22, 13, 20],
                 "dst": "bench/dev"}],
    }


def generate_dump(root: Path, projects: int) -> int:
    """Write the dump; return its number of files."""
    files, meta = [], {}
    for p in range(projects):
        name = f"migbench-{p:04d}"
        meta[name] = {}
        for v in range(VERSIONS):
            version = f"1.{v}"
            spec = DistSpec(name, version, module_code="X = 1\n" * 40)
            meta[name][version] = {"name": name, "version": version, "summary": spec.summary}
            for dist in (make_wheel(spec), make_sdist(spec)):
                relpath = f"bench/dev/{name}/{version}/{dist.filename}"
                (root / relpath).parent.mkdir(parents=True, exist_ok=True)
                (root / relpath).write_bytes(dist.content)
                files.append(_filedesc(relpath, dist.content, name, version))
    data = {
        "dumpversion": "2", "pythonversion": list(sys.version_info), "devpi_server": "6.14.0",
        "users": {name: {"username": name, "pwhash": PWHASH} for name in ("root", "bench", "ci")},
        "indexes": {"bench/dev": {
            "indexconfig": {"type": "stage", "bases": [], "volatile": True,
                            "acl_upload": ["bench"], "mirror_whitelist": []},
            "projects": meta, "files": files}},
    }
    (root / "dataindex.json").write_text(json.dumps(data))
    return len(files)


def measure(args: list[str]) -> tuple[float, int, str]:
    """Run ``args``; return wall seconds, the peak resident KiB seen, and the output."""
    start = time.monotonic()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=clean_env(), text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            out = subprocess.run(["ps", "-o", "rss=", "--ppid", str(process.pid), "-p",
                                  str(process.pid)], capture_output=True, text=True,
                                 check=False).stdout
            peak = max(peak, sum(int(v) for v in out.split()))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    elapsed = time.monotonic() - start
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{args[0]} failed:\n{output[-3000:]}")
    return elapsed, peak, output


def main() -> None:
    """Generate the dump, run both importers, print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--projects", type=int, default=500)
    parser.add_argument("--skip-devpi", action="store_true")
    parser.add_argument("--skip-backends", action="store_true")
    opts = parser.parse_args()
    work = workdir("migration")
    dump = work / "dump"
    count = generate_dump(dump, opts.projects)
    size = sum(p.stat().st_size for p in dump.rglob("*") if p.is_file())
    config = work / "core.yml"
    config.write_text("logging: {access_log: false}\n")
    rows = []
    core_s, core_kib, out = measure([str(CORE_BIN / "devpi-core"), "import", "--serverdir",
                                     str(work / "core"), "--config", str(config), str(dump)])
    print(out.strip().splitlines()[-1])
    rows.append(["devpi-core import", core_s, core_kib / 1024, 1.0])
    if not opts.skip_devpi:
        ensure_peer_venv()
        peer_s, peer_kib, _ = measure([str(PEER_VENV / "bin" / "devpi-import"), "--serverdir",
                                       str(work / "peer"), "--no-root-pypi", str(dump)])
        rows.append(["devpi-server devpi-import", peer_s, peer_kib / 1024, peer_s / core_s])
    print(table(f"Import of {count} files ({size / 1e6:.1f} MB) across {opts.projects} projects",
                ["importer", "seconds", "peak RSS MiB", "devpi-import / this"], rows))
    if not opts.skip_backends:
        move_backends(work, config, count)


def move_backends(work: Path, config: Path, count: int) -> None:
    """``sqlite+fs -> postgresql+s3``: export the imported server, import it into PG and S3."""
    moved = work / "move-dump"
    export_s, export_kib, out = measure([str(CORE_BIN / "devpi-core"), "export", "--serverdir",
                                         str(work / "core"), "--config", str(config), str(moved)])
    print(out.strip().splitlines()[-1])
    moto = start_moto(str(CORE_BIN / "moto_server"))
    try:
        bucket = moto.new_bucket()
        with running_postgres() as pg:
            target = write_config(work / "pg-s3.yml", {
                "logging": {"access_log": False},
                "storage": {"metadata": "postgresql", "blobs": "s3"},
                "plugins": {"pgstore": {"dsn": pg.create_database()},
                            "s3store": moto.settings(bucket)},
            })
            import_s, import_kib, out = measure([
                str(CORE_BIN / "devpi-core"), "import", "--serverdir", str(work / "pg-s3"),
                "--config", str(target), str(moved)])
            print("\n".join(out.strip().splitlines()[-4:]))  # the phases and the summary
    finally:
        if moto.process is not None:
            stop(moto.process)
    rows = [
        ["devpi-core export (sqlite+fs)", export_s, count / export_s, export_kib / 1024],
        ["devpi-core import (postgresql+s3)", import_s, count / import_s, import_kib / 1024],
        ["sqlite+fs -> postgresql+s3", export_s + import_s, count / (export_s + import_s),
         max(export_kib, import_kib) / 1024],
    ]
    print(table(f"Moving {count} files between storage backends",
                ["step", "seconds", "files/s", "peak RSS MiB"], rows))


if __name__ == "__main__":
    main()
