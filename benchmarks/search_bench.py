"""Full-text search of 50,000 projects: ``/+search`` latency through a real server.

A stage index is filled with 50,000 projects (generated names, summaries, keywords and
descriptions of ~120 words) written straight into the server's SQLite file, then ``/+search``
is asked in turn for a name prefix, a name substring, an exact name, one summary word, two
words and a word that matches nothing, each ``--rounds`` times, one request at a time.
Reported: p50 and p99 per kind of query (goal: p99 <= 50 ms), the server's CPU time per request
(read from /proc: less sensitive to a loaded machine than wall time) and the store's own query
time for the first page (in the benchmark process).

``--metadata postgresql`` runs the same on the PostgreSQL metadata store (a throw-away server,
as the tests start it); ``--metadata both`` runs SQLite, then PostgreSQL.

Run: ``.venv/bin/python benchmarks/search_bench.py [--projects 50000] [--rounds 40]
[--metadata sqlite|postgresql|both]``.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from devpi_core_fsstore.sqlite_store import SQLiteStore  # noqa: E402
from devpi_core_stages import layout  # noqa: E402
from harness import start_devpi_core, table, workdir  # noqa: E402 - after the path set-up

from devpi_core import search  # noqa: E402
from devpi_core.testing.postgres import running_postgres  # noqa: E402

if TYPE_CHECKING:
    from devpi_core.interfaces import MetadataStore

USER, PASSWORD = "bench", "bench-password-1"
INDEX = f"{USER}/dev"
BROWSER = {"Accept": "text/html"}


def vocabulary(rng: random.Random, size: int = 6000) -> list[str]:
    """Pronounceable made-up words, so every query word is a real token of the data."""
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    words = set()
    while len(words) < size:
        syllables = rng.randint(2, 4)
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables)))
    return sorted(words)


def fill(store: MetadataStore, projects: int, rng: random.Random) -> list[str]:
    """Write ``projects`` projects (one version each) with their search documents."""
    words = vocabulary(rng)
    names = []
    batch = 2000
    for start in range(0, projects, batch):
        with store.write() as tx:
            for n in range(start, min(projects, start + batch)):
                name = f"{rng.choice(words)}-{rng.choice(words)}-{n}"
                names.append(name)
                metadata = {
                    "name": name, "version": "1.0",
                    "summary": " ".join(rng.choices(words, k=8)),
                    "keywords": ",".join(rng.choices(words, k=3)),
                    "description": " ".join(rng.choices(words, k=120)),
                }
                tx.set(layout.version_key(INDEX, name, "1.0"), {"metadata": metadata, "files": {}})
                tx.set(layout.project_key(INDEX, name), {"name": name, "changes": 1})
                search.put(tx, INDEX, name, metadata)
            tx.set(layout.names_key(INDEX), {"changes": start + 1})
    return names


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def open_store(metadata: str, serverdir: Path, dsn: str) -> MetadataStore:
    if metadata == "postgresql":
        from devpi_core_pgstore.pg_store import PgStore  # noqa: PLC0415 - optional extra
        from devpi_core_pgstore.settings import PgstoreSettings  # noqa: PLC0415

        return PgStore(PgstoreSettings(dsn=dsn, pool_min=1, pool_max=2))
    return SQLiteStore(str(serverdir / "metadata.sqlite"))


def server_config(metadata: str, dsn: str) -> str:
    if metadata == "postgresql":
        return ("logging: {access_log: false}\nstorage: {metadata: postgresql}\n"
                f"plugins: {{pgstore: {{dsn: '{dsn}'}}}}\n")
    return ""


Rows = list[tuple[object, ...]]


def measure(  # noqa: PLR0915 - one linear script
    metadata: str, args: argparse.Namespace, dsn: str
) -> tuple[str, Rows]:
    """Fill (or reuse) a server on ``metadata`` and time its queries: the table's title, rows."""
    rng = random.Random(42)
    config = server_config(metadata, dsn)
    if args.reuse:
        work, serverdir, filled = args.reuse, args.reuse / "core-serverdir", 0.0
        store = open_store(metadata, serverdir, dsn)
        with store.read() as tx:
            start = len(layout.projects_prefix(INDEX))
            names = [key[start:] for key in tx.keys(layout.projects_prefix(INDEX))]
    else:
        work = workdir(f"search-{metadata}")
        server = start_devpi_core(work, config=config)
        try:
            session = requests.Session()
            session.put(f"{server.url}/{USER}", json={"password": PASSWORD}).raise_for_status()
            session.auth = (USER, PASSWORD)
            session.put(f"{server.url}/{INDEX}", json={"type": "stage"}).raise_for_status()
        finally:
            server.stop()
        serverdir = server.serverdir
        store = open_store(metadata, serverdir, dsn)
        began = time.perf_counter()
        names = fill(store, args.projects, rng)
        filled = time.perf_counter() - began
    sample = sorted(names)[len(names) // 2]
    first, second = sample.split("-")[:2]
    with store.read() as tx:
        summary = tx.get(layout.version_key(INDEX, sample, "1.0"))["metadata"]["summary"].split()
    queries = {
        "name prefix": first[:4],
        "name substring": second[1:5],
        "exact name": sample,
        "one word": summary[0],
        "two words": f"{summary[0]} {summary[1]}",
        "no match": "qqqqzzzz",
    }
    store_ms = {}
    for kind, text in queries.items():
        with store.read() as tx:
            start = time.perf_counter()
            for _ in range(5):
                tx.search(search.SearchQuery(text, (INDEX,), limit=20))
            store_ms[kind] = (time.perf_counter() - start) / 5 * 1000
    store.close()
    server = start_devpi_core(work, config=config, serverdir=serverdir)
    rows: Rows = []
    try:
        session = requests.Session()
        # root/pypi's upstream list (hundreds of thousands of names) is searched by name too
        listed = session.get(f"{server.url}/root/pypi/+simple/", timeout=300)
        mirror_names = listed.text.count("<a ") if listed.ok else 0
        for kind, text in queries.items():
            latencies, found = [], ""
            # not measured: the first search reads the mirror's stored list into memory once
            session.get(f"{server.url}/+search", params={"q": text}, headers=BROWSER)
            cpu = server.cpu_seconds()
            for _ in range(args.rounds):
                start = time.perf_counter()
                response = session.get(f"{server.url}/+search", params={"q": text},
                                       headers=BROWSER)
                latencies.append((time.perf_counter() - start) * 1000)
                response.raise_for_status()
                found = response.text
            cpu_ms = (server.cpu_seconds() - cpu) / args.rounds * 1000
            count = found.split(" projects found", 1)[0].rsplit(">", 1)[-1] if (
                " projects found" in found) else "0"
            rows.append((kind, repr(text), count, statistics.median(latencies),
                         percentile(latencies, 0.99), cpu_ms, store_ms[kind]))
    finally:
        server.stop()
    title = (f"{metadata}: /+search over {args.projects:,} stage projects (filled in "
             f"{filled:.0f} s) and {mirror_names:,} mirror names, {args.rounds} requests each, "
             "one at a time")
    return title, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--projects", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--metadata", choices=("sqlite", "postgresql", "both"), default="sqlite",
                        help="the metadata store (postgresql: a throw-away server, as the "
                             "tests start it)")
    parser.add_argument("--reuse", type=Path, help="a work directory a previous run filled "
                        "(sqlite only)")
    args = parser.parse_args()
    stores = ("sqlite", "postgresql") if args.metadata == "both" else (args.metadata,)
    tables = []
    with contextlib.ExitStack() as stack:
        dsn = ""
        if "postgresql" in stores:
            if args.reuse:
                parser.error("--reuse works with --metadata sqlite only")
            dsn = stack.enter_context(running_postgres()).create_database()
        for metadata in stores:
            tables.append(measure(metadata, args, dsn))
    for title, rows in tables:
        print(table(title, ("query", "text", "found", "p50 ms", "p99 ms", "server CPU ms",
                            "store ms"), rows))


if __name__ == "__main__":
    main()
