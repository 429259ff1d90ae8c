"""The table ``mirror_bench.py`` prints: medians of the client runs, ratios to direct, server
CPU per run, the load phases, memory, start-up and the restart without an upstream."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from harness import table

if TYPE_CHECKING:
    import argparse

    from mirror_bench import Run, Target, Workload


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def runs(target: Target, key: str) -> list[Run]:
    return target.numbers.get(key, [])  # type: ignore[return-value]


def _wall(target: Target, key: str) -> float | None:
    values = runs(target, key)
    return _median([v[0] for v in values]) if values else None


CLIENTS = {"pip": "pip download", "uv": "uv pip install --target", "compile": "uv pip compile"}


def client_rows(direct: Target, targets: list[Target], load: Workload) -> list[list[object]]:
    """Wall seconds (median) per client and phase, ratios to direct; server CPU per run."""
    rows: list[list[object]] = []
    for client, label in CLIENTS.items():
        for phase in ("cold", "warm"):
            key = f"{client}_{phase}"
            base = _wall(direct, key)
            cells: list[object] = []
            ratios = []
            for target in targets:
                value = _wall(target, key)
                files = "" if client == "compile" else f" [{runs(target, key)[0][1]}]"
                cells.append(f"{value:.1f}{files}" if value is not None else "-")
                if value is not None and base:
                    ratios.append(f"{target.name} {value / base:.2f}x")
            note = f"[files] of {load.count}" if client != "compile" else ""
            rows.append([f"{label} {phase}, s", f"{base:.1f}" if base else "-", *cells,
                         ", ".join(ratios), note])
    for client, label in CLIENTS.items():
        for phase in ("cold", "warm"):
            cells = []
            for target in targets:
                values: list[float] = target.numbers.get(f"{client}_{phase}_cpu", [])  # type: ignore[assignment]
                cells.append("/".join(f"{v:.2f}" for v in values) or "-")
            rows.append([f"server CPU s per {label} {phase}", "", *cells, "", "each run"])
    return rows


def load_rows(targets: list[Target], seconds: int) -> list[list[object]]:
    """Cached pages, the big wheel, the ceiling."""
    rows: list[list[object]] = []
    for form in ("html", "json"):
        cells = []
        for target in targets:
            c = target.numbers.get(f"pages_{form}")
            cells.append(f"{c.requests_per_s:.0f} ({c.p50_ms:.0f}/{c.p99_ms:.0f})" if c else "-")  # type: ignore[attr-defined]
        rows.append([f"cached pages {form.upper()} c=8, req/s (p50/p99 ms)", "", *cells, "", ""])
    cells = []
    for target in targets:
        c = target.numbers.get("file")
        cpu = target.numbers.get("file_cpu", 0.0)
        cells.append(f"{c.mb_per_s:.0f} (CPU {cpu:.1f} s)" if c else "-")  # type: ignore[attr-defined]
    rows.append([f"cached big wheel c=8, MB/s ({seconds} s)", "", *cells, "", ""])
    for form in ("html", "json"):
        ceiling = targets[0].numbers.get(f"ceiling_{form}")
        if ceiling:
            ours, bare, size = ceiling  # type: ignore[misc]
            rows.append([
                f"ceiling: 300-file page {form.upper()} c=8, req/s",
                f"bare {bare.requests_per_s:.0f}",
                f"{ours.requests_per_s:.0f}",
                *([""] * (len(targets) - 1)),
                f"core {ours.requests_per_s / bare.requests_per_s:.0%} of bare",
                f"{size} bytes",
            ])
    return rows


def render(direct: Target, targets: list[Target], load: Workload, args: argparse.Namespace) -> str:
    mode = "quick (fake upstream)" if args.quick else "real upstream"
    rows = client_rows(direct, targets, load) + load_rows(targets, args.seconds)
    for key, label, fmt in (
        ("rss_peak_mib", "resident memory, peak during the run, MiB", "{:.0f}"),
        ("rss_mib", "resident memory after the run, MiB", "{:.0f}"),
        ("startup", "start-up to first answer (populated), s", "{:.2f}"),
    ):
        rows.append(
            [label, "",
             *(fmt.format(t.numbers[key]) if key in t.numbers else "-" for t in targets), "", ""]
        )
    offline = []
    for target in targets:
        got = target.numbers.get("offline")
        offline.append(f"{got[1]}/{load.count} files, {got[0]:.1f} s" if got else "-")  # type: ignore[index]
    rows.append(["restarted, upstream unreachable", "", *offline, "", ""])
    header = ["measure", "direct", *[t.name for t in targets], "ratio", "note"]
    return table(
        f"root/pypi benchmark, {mode}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        header,
        rows,
    )
