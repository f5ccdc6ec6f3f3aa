"""Does dynamic-lookahead find out a draft that is confidently wrong?

The draft pair's controller switches the draft on where the *target* is sure, betting that a
draft agrees with its target there. A draft that does not (another family, a bad
fine-tune) must be found out by the draft's own verdicts (the controller's calibration)
before it costs much. This makes a poor draft out of recorded draft traces: a seeded
``--wrong`` fraction of the draft's greedy tokens is replaced by a token the target never
accepts, keeping the draft's confidence in it (the worst case: sure and wrong), and replays
plain decoding, fixed k and the given strategies on the result, over ``--orders`` orders.
Prints the table and saves JSON.

    T=benchmarks/traces/qwen2.5-coder-1.5b-draft-0.5b
    python benchmarks/poor_draft.py $T-specbench-1-3.json $T-specbench-4-6.json $T-heldout.json \
        --wrong 0.5 --orders 8 --out docs/data/poor-draft.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
from pathlib import Path

from sage.llm.bench.draft_traces import TracedDraft
from sage.llm.bench.replay import (
    over_orders,
    run_policies,
    standard_policies,
    strategy_policy,
    summarize,
)
from sage.llm.bench.traces import TraceSet

WRONG = -2  # no vocabulary has a negative id: the target never accepts it


def spoil(traces: TraceSet, fraction: float, seed: int) -> TraceSet:
    """``traces`` with ``fraction`` of the draft's tokens made wrong (confidence kept)."""
    rng = random.Random(seed)
    spoiled = []
    for trace in traces.traces:
        tokens = [WRONG if rng.random() < fraction else t for t in trace.draft_tokens]
        spoiled.append(dataclasses.replace(trace, draft_tokens=tokens))
    return dataclasses.replace(traces, traces=spoiled)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("traces", nargs="+", type=Path, help="draft trace files (record-draft)")
    parser.add_argument("--wrong", type=float, default=0.5, help="fraction of draft tokens")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--orders", type=int, default=8)
    parser.add_argument("--max-k", type=int, default=10)
    parser.add_argument(
        "-s", "--strategy", action="append", default=None, help="default: dynamic-lookahead"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not 0.0 <= args.wrong <= 1.0:
        parser.error("--wrong is a fraction in [0, 1]")
    strategies = args.strategy or ["dynamic-lookahead"]

    sets = [TraceSet.load(p) for p in args.traces]
    merged = TraceSet(sets[0].model, [t for s in sets for t in s.traces], sets[0].costs)
    traces = spoil(merged, args.wrong, args.seed)

    def inner() -> TracedDraft:
        return TracedDraft(traces)

    policies = standard_policies(traces, inner, args.max_k, draft=True)
    keep = {"plain", *(f"fixed-{k}" for k in range(1, args.max_k + 1))}
    results = run_policies(traces, {k: v for k, v in policies.items() if k in keep})
    summary = summarize(traces, results)
    cats = summary["categories"]
    rows = {
        "best fixed k": {c: summary["speedup"][c]["best-fixed (category)"] for c in cats},
    }
    for spec in strategies:
        spread = over_orders(traces, strategy_policy(spec, inner), results["plain"], args.orders)
        rows[spec] = {c: spread[c]["mean"] for c in cats}
        rows[f"{spec} (lowest order)"] = {c: spread[c]["min"] for c in cats}
    print(
        f"speedup over plain decoding, {args.wrong:.0%} of the draft's tokens wrong, "
        f"mean over {args.orders} orders"
    )
    print("| policy | " + " | ".join(cats) + " |")
    print("| --- |" + " ---: |" * len(cats))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[c]:.2f}x" for c in cats) + " |")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(
                {"wrong": args.wrong, "seed": args.seed, "orders": args.orders, "rows": rows},
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
