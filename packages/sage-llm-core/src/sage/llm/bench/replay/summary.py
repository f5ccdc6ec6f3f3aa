"""Speedups over plain decoding from replayed runs, and the Markdown table they print as."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sage.llm.bench.replay.simulator import SimResult
from sage.llm.bench.traces import TraceSet


def summarize(traces: TraceSet, results: dict[str, list[SimResult]]) -> dict[str, Any]:
    """Speedup over plain per category and overall, plus the best fixed k in hindsight."""
    cats = sorted({t.category for t in traces.traces})
    groups: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(traces.traces):
        groups[t.category].append(i)
    groups["overall"] = list(range(len(traces.traces)))
    plain = results["plain"]
    fixed = [name for name in results if name.startswith("fixed-")]
    table: dict[str, dict[str, float]] = {}
    for group in [*cats, "overall"]:
        idx = groups[group]
        base = sum(plain[i].seconds for i in idx)
        row = {name: base / sum(runs[i].seconds for i in idx) for name, runs in results.items()}
        best = max(fixed, key=lambda name: row[name]) if fixed else None
        if best is not None:
            row["best-fixed (category)"] = row[best]
            row["best-fixed k"] = float(best.split("-")[1])
            per_request = sum(min(results[n][i].seconds for n in fixed) for i in idx)
            row["best-fixed (request)"] = base / per_request
        table[group] = row
    return {"categories": [*cats, "overall"], "speedup": table}


def format_table(summary: dict[str, Any], columns: Sequence[str]) -> str:
    rows = ["| policy | " + " | ".join(summary["categories"]) + " |"]
    rows.append("| --- |" + " ---: |" * len(summary["categories"]))
    for name in columns:
        cells = []
        for cat in summary["categories"]:
            value = summary["speedup"][cat].get(name)
            if value is None:
                cells.append("")
            elif name == "best-fixed k":
                cells.append(str(int(value)))
            else:
                cells.append(f"{value:.2f}x")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
