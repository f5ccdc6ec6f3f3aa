"""How far the replay is from measured runs: ``sage-llm replay check`` on a bench JSON."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sage.llm.bench.draft_traces import TracedDraft
from sage.llm.bench.replay.runs import run_policies, strategy_policy
from sage.llm.bench.traces import TraceSet
from sage.llm.proposer import Proposer


def check(traces: TraceSet, bench: dict[str, Any]) -> list[dict[str, Any]]:
    """Per (method, category) of a bench run: replayed and measured speedup over plain.

    Only the bench's reference-engine methods are replayed (by their strategy spec), on the
    traces of the bench's questions, whose plain outputs must equal the bench's token for
    token (otherwise the traces are of another model or version, and this says so). A method
    whose strategy has a draft model (its draft-model parameter is set) runs over the traces'
    draft predictions (record-draft)."""
    from sage.llm import get_strategy
    from sage.llm.params import draft_model_of

    records = bench["records"]
    by_id = {t.question_id: t for t in traces.traces}
    plain_out = {r["question_id"]: r["token_ids"] for r in records if r["method"] == "plain"}
    missing = sorted(str(q) for q in plain_out if q not in by_id)
    if missing:
        raise ValueError(f"no trace for question(s) {', '.join(missing)}; record them first")
    for qid, tokens in plain_out.items():
        if list(by_id[qid].output_ids) != list(tokens):
            raise ValueError(
                f"question {qid}: the trace's plain output differs from the bench's; the "
                "traces were recorded with another model, dtype or version"
            )
    used = TraceSet(traces.model, [by_id[q] for q in plain_out], traces.costs)
    methods = sorted(
        {r["method"] for r in records if r["method"] != "plain" and r.get("metrics") is not None}
    )
    policies: dict[str, Callable[[], Proposer | None]] = {"plain": lambda: None}
    for spec in methods:
        drafted = draft_model_of(get_strategy(spec)) is not None
        policies[spec] = strategy_policy(spec, (lambda: TracedDraft(used)) if drafted else None)
    results = run_policies(used, policies)
    measured: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in records:
        for cat in (r["category"], "all"):
            cell = measured[(r["method"], cat)]
            cell[0] += r["num_tokens"]
            cell[1] += r["seconds"]
    rows = []
    cats = sorted({t.category for t in used.traces})
    for spec in methods:
        for cat in [*cats, "all"]:
            idx = [i for i, t in enumerate(used.traces) if cat in ("all", t.category)]
            simulated = sum(results["plain"][i].seconds for i in idx) / sum(
                results[spec][i].seconds for i in idx
            )
            mine, base = measured[(spec, cat)], measured[("plain", cat)]
            real = (mine[0] / mine[1]) / (base[0] / base[1])
            rows.append(
                {
                    "method": spec,
                    "category": cat,
                    "simulated": simulated,
                    "measured": real,
                    "error": simulated / real - 1.0,
                }
            )
    return rows
