"""Running a waitress server in a thread of a test, and stopping it: waitress's ``run()`` has
no stop, so the loop polls until told, then closes the server and every connection in the
same thread, keep-alive ones too ("stopped" means refused)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from waitress import wasyncore

if TYPE_CHECKING:
    from collections.abc import Iterator


def serve_until(server: Any, stopping: threading.Event) -> None:
    """Run ``server``'s loop until ``stopping`` is set, then close it and its connections."""
    while not stopping.is_set():
        wasyncore.loop(timeout=0.05, map=server._map, use_poll=True, count=1)
    server.close()
    wasyncore.close_all(server._map)
    server.task_dispatcher.shutdown(timeout=5)


@contextmanager
def served(server: Any) -> Iterator[Any]:
    """``server`` answering in a thread of its own for the block's duration."""
    stopping = threading.Event()
    thread = threading.Thread(target=serve_until, args=(server, stopping), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stopping.set()
        thread.join(10)
