"""Replay speculation policies exactly on recorded traces (:mod:`sage.llm.bench.traces`).

A trace holds a prompt's plain greedy output and the measured cost of a verify pass of ``1..n``
tokens. Replaying a policy on it is the reference engine's loop with the model replaced by the
trace: tokens, steps and every proposer call are exactly those of a live greedy run; only time
is modelled (the measured cost table), and the end-to-end runs in docs/benchmarks.md report how
far the modelled speedups are from measured ones.

One job per module:

* :mod:`~sage.llm.bench.replay.simulator`: the loop (:func:`simulate`) and its clock;
* :mod:`~sage.llm.bench.replay.policies`: the baselines a strategy is compared with (fixed-k,
  transformers' heuristic, EMA tiers, UCB, the oracle);
* :mod:`~sage.llm.bench.replay.runs`: policies over a trace set, strategies through the
  contract (``make_proposer``, ``wrap_proposer``), replays in several orders;
* :mod:`~sage.llm.bench.replay.summary`: speedups per category and the table;
* :mod:`~sage.llm.bench.replay.plot`: the bar chart;
* :mod:`~sage.llm.bench.replay.check`: replayed against measured speedups of a bench run;
* :mod:`~sage.llm.bench.replay.loading`: reading traces, loading a model to record into them.

The command line is ``sage-llm replay`` (:mod:`sage.llm.cli.replay`);
``python -m sage.llm.bench.replay`` is the same command under its older name.
"""

from __future__ import annotations

from collections.abc import Sequence

from sage.llm.bench.replay.check import check
from sage.llm.bench.replay.loading import load_traces
from sage.llm.bench.replay.plot import plot, plot_columns, with_order_means
from sage.llm.bench.replay.policies import EmaTiers, Fixed, HfHeuristic, Oracle, Ucb
from sage.llm.bench.replay.runs import (
    inner_proposer,
    over_orders,
    run_policies,
    standard_policies,
    strategy_policy,
)
from sage.llm.bench.replay.simulator import SimClock, SimResult, simulate
from sage.llm.bench.replay.summary import format_table, summarize

__all__ = [
    "EmaTiers",
    "Fixed",
    "HfHeuristic",
    "Oracle",
    "SimClock",
    "SimResult",
    "Ucb",
    "check",
    "format_table",
    "inner_proposer",
    "load_traces",
    "main",
    "over_orders",
    "plot",
    "plot_columns",
    "run_policies",
    "simulate",
    "standard_policies",
    "strategy_policy",
    "summarize",
    "with_order_means",
]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sage.llm.bench.replay ARGS``: ``sage-llm replay ARGS`` (returns 0; an error
    is a ``SystemExit`` with its message)."""
    from sage.llm.cli.replay import run_as_script

    return run_as_script(argv)
