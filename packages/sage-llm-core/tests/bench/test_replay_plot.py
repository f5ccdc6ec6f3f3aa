"""``sage-llm replay plot``: a saved summary drawn again, without replaying."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sage.llm.bench.replay import main, plot_columns, with_order_means

CATS = ["qa", "rag", "overall"]


def summary(with_peer: bool = True) -> dict[str, object]:
    row = {
        "plain": 1.0,
        "best-fixed (category)": 0.9,
        "hf-heuristic": 0.88,
        "ema-tiers": 0.87,
        "ucb": 0.8,
        "dynamic-lookahead": 0.95,
        "oracle": 1.1,
    }
    if with_peer:
        row["hf-assisted:default"] = 0.7
    return {
        "categories": CATS,
        "speedup": {cat: dict(row) for cat in CATS},
        "orders": {
            "count": 4,
            "dynamic-lookahead": {c: {"mean": 0.99, "min": 0.97, "max": 1.0} for c in CATS},
        },
    }


def test_strategies_are_drawn_at_their_mean_over_orders() -> None:
    drawn = with_order_means(summary())
    assert drawn["speedup"]["qa"]["dynamic-lookahead"] == 0.99  # the tables' figure
    assert drawn["speedup"]["qa"]["ucb"] == 0.8  # a baseline replays in one order only


def test_columns_hold_the_draft_peer_only_when_the_summary_has_it() -> None:
    assert "hf-assisted:default" in plot_columns(summary(), ["dynamic-lookahead"])
    columns = plot_columns(summary(with_peer=False), ["dynamic-lookahead"])
    assert columns == [
        "best-fixed (category)",
        "hf-heuristic",
        "ema-tiers",
        "ucb",
        "dynamic-lookahead",
        "oracle",
    ]


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    source = tmp_path / "replay.json"
    source.write_text(json.dumps(summary()))
    out = tmp_path / "img" / "replay.png"
    assert main(["plot", str(source), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_unknown_strategy_or_file_is_refused_with_what_it_holds(tmp_path: Path) -> None:
    source = tmp_path / "replay.json"
    source.write_text(json.dumps(summary()))
    with pytest.raises(SystemExit, match=r"no results for 'ngram'.*it has: plain"):
        main(["plot", str(source), "-s", "ngram", "--out", str(tmp_path / "x.png")])
    other = tmp_path / "bench.json"
    other.write_text(json.dumps({"records": []}))
    with pytest.raises(SystemExit, match=r"not a summary written by `replay run --json`"):
        main(["plot", str(other), "--out", str(tmp_path / "x.png")])
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(SystemExit, match=r"cannot read .*broken\.json as JSON"):
        main(["plot", str(broken), "--out", str(tmp_path / "x.png")])
    with pytest.raises(SystemExit, match=r"cannot read .*missing\.json as JSON"):
        main(["plot", str(tmp_path / "missing.json"), "--out", str(tmp_path / "x.png")])
