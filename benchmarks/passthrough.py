"""The stack's floor for a cold mirror: waitress and requests passing an upstream through.

``python passthrough.py UPSTREAM [--store DIR]`` serves ``UPSTREAM``'s simple pages and files
on a free port (printed first), with the same thread count and output watermark as
devpi-core. A page is fetched and its file links pointed here by one bytes substitution: no
parse, no render, no store. A file is streamed in 256 KiB chunks as it arrives. With
``--store`` each file is also hashed (sha256) and written to a temp file in ``DIR``, fsynced
and renamed, which is the least a cache does with it. What this process spends per lock is
what any cache on this stack spends before doing anything of its own; ``replay_bench.py``
measures it beside devpi-core. It stops when its stdin closes.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import requests
import requests.adapters
from waitress.server import create_server

from devpi_core.serving import OUTBUF_HIGH_WATERMARK

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

CHUNK = 256 * 1024
THREADS = 16  # devpi-core's default
LINKS = re.compile(rb'https?://[^/"]+/packages/')


class Passthrough:
    """The WSGI app: ``/simple/<name>/`` and ``/packages/...`` from the upstream."""

    def __init__(self, upstream: str, store: Path | None) -> None:
        self.upstream = upstream.rstrip("/")
        self.origin = re.match(r"https?://[^/]+", upstream).group(0)  # type: ignore[union-attr]
        self.store = store
        # one pool for all workers, as devpi-core's mirror client has
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=THREADS)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        headers = {"Accept": environ.get("HTTP_ACCEPT", "*/*")}
        if path.startswith("/packages/"):
            reply = self.session.get(self.origin + path, stream=True, timeout=60)
            start_response(
                f"{reply.status_code} {reply.reason}",
                [
                    ("Content-Type", reply.headers.get("Content-Type", "application/octet-stream")),
                    ("Content-Length", reply.headers.get("Content-Length", "0")),
                ],
            )
            return self._stream(reply)
        name = path.removeprefix("/simple/")
        reply = self.session.get(f"{self.upstream}/{name}", headers=headers, timeout=60)
        here = f"{environ['wsgi.url_scheme']}://{environ['HTTP_HOST']}/packages/".encode()
        body = LINKS.sub(here, reply.content)
        start_response(
            f"{reply.status_code} {reply.reason}",
            [
                ("Content-Type", reply.headers.get("Content-Type", "text/html")),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]

    def _stream(self, reply: requests.Response) -> Iterator[bytes]:
        if self.store is None:
            yield from reply.iter_content(CHUNK)
            return
        digest = hashlib.sha256()
        with tempfile.NamedTemporaryFile(dir=self.store, delete=False) as out:
            for chunk in reply.iter_content(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                yield chunk
            out.flush()
            os.fsync(out.fileno())
        os.replace(out.name, self.store / digest.hexdigest())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("upstream")
    parser.add_argument("--store", type=Path, help="hash and store each file here")
    args = parser.parse_args()
    # uv asks for dozens of files at once: not worth a warning per queued request here
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    server = create_server(
        Passthrough(args.upstream, args.store),
        host="127.0.0.1",
        port=0,
        threads=THREADS,
        outbuf_high_watermark=OUTBUF_HIGH_WATERMARK,
    )
    print(f"http://127.0.0.1:{server.effective_port}", flush=True)
    threading.Thread(target=server.run, daemon=True).start()
    sys.stdin.read()  # until the benchmark closes the pipe
    return 0


if __name__ == "__main__":
    sys.exit(main())
