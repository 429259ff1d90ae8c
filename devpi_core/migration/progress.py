"""Progress of ``devpi-core import``/``export``: a bar on a terminal, one line per phase otherwise.

The bar is tqdm's (a small, pure-Python, maintained library with no dependencies of its own);
it is shown only when the stream is a terminal, so logs and CI output get one line per phase.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import TextIO


@dataclass
class Phase:
    """One phase being counted: items done and bytes moved."""

    name: str
    total: int
    bar: Any = None
    done: int = 0
    nbytes: int = 0

    def advance(self, items: int = 1, nbytes: int = 0) -> None:
        """Count ``items`` more done, and ``nbytes`` more bytes."""
        self.done += items
        self.nbytes += nbytes
        if self.bar is not None:
            self.bar.update(items)


@dataclass
class Progress:
    """Reports phases to ``stream``; ``bar`` None: a bar only if ``stream`` is a terminal."""

    stream: TextIO
    bar: bool | None = None
    started: float = field(default_factory=time.monotonic)

    def _use_bar(self) -> bool:
        if self.bar is not None:
            return self.bar
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    @contextmanager
    def phase(self, name: str, total: int, unit: str = "file") -> Iterator[Phase]:
        """Count one phase of ``total`` items; a line (or a finished bar) when it ends."""
        phase = Phase(name, total)
        start = time.monotonic()
        if self._use_bar():
            phase.bar = tqdm(total=total, desc=name, unit=unit, file=self.stream, leave=True)
        try:
            yield phase
        finally:
            if phase.bar is not None:
                phase.bar.close()
            else:
                size = f", {phase.nbytes} bytes" if phase.nbytes else ""
                self.line(f"{name}: {phase.done}/{total} {unit}s{size} "
                          f"in {time.monotonic() - start:.1f} s")

    def line(self, text: str) -> None:
        """Write one line."""
        self.stream.write(text + "\n")
        self.stream.flush()

    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self.started
