"""Progress of import/export: a tqdm bar on a terminal, one line per phase otherwise."""

from __future__ import annotations

import io

from devpi_core.migration.importer import Summary
from devpi_core.migration.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_one_line_per_phase_when_not_a_terminal():
    stream = io.StringIO()
    progress = Progress(stream)
    with progress.phase("files", 3) as phase:
        phase.advance(1, 10)
        phase.advance(2, 5)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("files: 3/3 files, 15 bytes in ")


def test_a_bar_on_a_terminal():
    stream = Terminal()
    with Progress(stream).phase("metadata", 2, unit="project") as phase:
        phase.advance()
        phase.advance()
    out = stream.getvalue()
    assert "metadata: 100%" in out
    assert "2/2" in out
    assert "\r" in out  # redrawn in place, not one line per step


def test_summary_line_names_every_count():
    summary = Summary(users=2, indexes=3, projects=4, files=5, nbytes=6, seconds=1.25, skipped=7)
    assert summary.line("imported") == (
        "imported 2 users, 3 indexes, 4 projects, 5 files, 6 bytes in 1.2 s, "
        "7 mirrored files skipped"
    )
