"""Drawing a replay summary (bars per category), also again from a saved ``run --json``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def plot(summary: dict[str, Any], columns: Sequence[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cats = summary["categories"]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(columns)
    for j, name in enumerate(columns):
        values = [summary["speedup"][c].get(name, 0.0) for c in cats]
        ax.bar([i + j * width for i in range(len(cats))], values, width, label=name)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(cats))], cats)
    ax.set_ylabel("simulated speedup over plain decoding")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


PLOT_BASELINES = ("best-fixed (category)", "hf-heuristic", "ema-tiers", "ucb")


def plot_columns(summary: dict[str, Any], strategies: Sequence[str]) -> list[str]:
    """The policies a plot of ``summary`` shows: the baselines it holds, ``strategies``, oracle."""
    held = summary["speedup"][summary["categories"][0]]
    draft_peer = ["hf-assisted:default"] if "hf-assisted:default" in held else []
    return [*[c for c in PLOT_BASELINES if c in held], *draft_peer, *strategies, "oracle"]


def with_order_means(summary: dict[str, Any]) -> dict[str, Any]:
    """``summary`` with each strategy replayed over several orders at its mean over them.

    A strategy learns across requests, so one order of the traces is one draw; the tables give
    the mean over orders, and a plot drawn from the same JSON should show the same figure.
    """
    orders = {k: v for k, v in summary.get("orders", {}).items() if k != "count"}
    speedup = {
        cat: {**row, **{spec: orders[spec][cat]["mean"] for spec in orders if cat in orders[spec]}}
        for cat, row in summary["speedup"].items()
    }
    return {**summary, "speedup": speedup}
