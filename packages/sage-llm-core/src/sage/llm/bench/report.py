"""Show and save benchmark results: a rich table, a JSON file and a PNG plot."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sage.llm.bench.summary import Row


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on (they only compare within one machine and run)."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["processor"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    return info


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def render_table(rows: Sequence[Row], title: str) -> Any:
    """A rich Table: one block of methods per category."""
    from rich.table import Table

    table = Table(title=title)
    for column, justify in (
        ("category", "left"),
        ("method", "left"),
        ("n", "right"),
        ("tok/s", "right"),
        ("vs plain", "right"),
        ("vs transformers", "right"),
        ("mean acc. len", "right"),
        ("acceptance", "right"),
        ("= plain greedy", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    previous = None
    for row in rows:
        if previous is not None and row.category != previous:
            table.add_section()
        previous = row.category
        same = "yes" if not row.mismatches else f"{row.mismatches} differ"
        if row.first_mismatch is not None:
            same += f" (from token {row.first_mismatch})"
        if row.mismatches:
            same = f"[red]{same}[/red]" if row.checked else f"[yellow]{same}[/yellow]"
        table.add_row(
            row.category,
            row.method,
            str(row.questions),
            f"{row.tokens_per_second:.2f}",
            _fmt(row.speedup_vs_plain, ".2f", "x"),
            _fmt(row.speedup_vs_peer, ".2f", "x"),
            _fmt(row.mean_accepted_length, ".2f"),
            _fmt(row.acceptance_rate, ".0%"),
            same,
        )
    return table


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n", "utf-8")


def plot(rows: Sequence[Row], path: Path, title: str) -> None:
    """Grouped bars: speedup over plain decoding per category, one bar per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    categories = list(dict.fromkeys(r.category for r in rows))
    methods = [m for m in dict.fromkeys(r.method for r in rows) if m != "plain"]
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(categories) + 2), 4.5))
    for i, method in enumerate(methods):
        values = []
        for category in categories:
            match = [r for r in rows if r.category == category and r.method == method]
            values.append(match[0].speedup_vs_plain or 0.0 if match else 0.0)
        xs = [c + (i - (len(methods) - 1) / 2) * width for c in range(len(categories))]
        ax.bar(xs, values, width, label=method)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(categories)), categories, rotation=20)
    ax.set_ylabel("speedup over plain decoding (x)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
