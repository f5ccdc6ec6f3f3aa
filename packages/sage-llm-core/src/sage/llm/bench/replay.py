"""Replay speculation policies exactly on recorded traces (:mod:`sage.llm.bench.traces`).

:func:`simulate` is the reference engine's loop with the model replaced by the trace: a step
proposes (through any :class:`~sage.llm.proposer.Proposer`), keeps the proposal's prefix that
equals the greedy output, commits one more token, and advances a simulated clock by the measured
cost of a pass of ``1 + len(draft)`` tokens. Tokens, steps and every proposer call are exactly
those of a live greedy run; only time is modelled (the measured cost table), and the end-to-end
runs in docs/benchmarks.md report how far the modelled speedups are from measured ones.

A proposer that measures time itself (dynamic-lookahead) gets the simulated clock through its
optional ``set_clock(clock)`` method, so it sees the step times the table says.

Policies compared (all over the same inner proposer, asked for at most ``max_k`` tokens):
``fixed-k``; ``hf-heuristic`` (transformers' assisted-generation schedule: +2 after a fully
accepted step, -1 otherwise, starting at 5 as transformers' prompt lookup does); ``ema-tiers``
(in the style of SGLang's adaptive speculation: a running mean of the acceptance rate picks one
of a few depths); ``ucb`` (UCB1 over ``k`` with tokens per second as the reward, knowing the
cost table); a strategy under test (``dynamic-lookahead``); ``oracle`` (proposes exactly the
tokens that will be accepted, none when none will: the upper bound).

Run ``python -m sage.llm.bench.replay --help``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sage.llm.bench.draft_traces import TracedDraft
from sage.llm.bench.traces import CostTable, Trace, TraceSet, common_prefix
from sage.llm.proposer import ConfidenceAwareProposer, Proposal, Proposer

HF_HEURISTIC_START = 5
"""transformers starts prompt lookup at ``prompt_lookup_num_tokens`` (its docs use 5-10)."""

EMA_WEIGHT = 0.3
EMA_TIERS = ((0.8, 1.0), (0.5, 0.5), (0.2, 0.25))
"""``ema-tiers``: acceptance-rate thresholds and the fraction of ``max_k`` they allow; below
the last threshold one token (or none when the policy may switch off)."""

HF_ASSISTED_TOKENS = 20
HF_ASSISTED_CONFIDENCE = 0.4
"""transformers' assisted generation left at its defaults (``num_assistant_tokens=20``,
constant schedule, ``assistant_confidence_threshold=0.4``): the ``hf-assisted:default`` column
of a draft-model replay. Passes larger than the measured table cost what its largest does."""

UCB_EXPLORATION = 0.5
"""UCB1's exploration weight on rewards normalised to a plain step's speed (1.0)."""


class SimClock:
    """Seconds of simulated time; call it to read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class SimResult:
    seconds: float
    steps: int
    tokens: int
    proposed: int
    accepted: int


def simulate(
    trace: Trace, proposer: Proposer | None, costs: CostTable, clock: SimClock | None = None
) -> SimResult:
    """Run ``proposer`` on ``trace`` as the engine would, timing steps with ``costs``."""
    clock = clock or SimClock()
    out = trace.output_ids
    eos = set(trace.eos_ids)
    clock.now += costs.prefill_seconds
    if proposer is not None:
        proposer.start(trace.prompt_ids)
    confidence = trace.target_confidence  # the engine's report (ConfidenceAwareProposer)
    listener = proposer if isinstance(proposer, ConfidenceAwareProposer) else None
    if listener is not None and confidence:
        listener.on_target_confidence(confidence[:1])
    context = [*trace.prompt_ids, out[0]]
    done = 1
    steps = proposed = accepted = 0
    finished = out[0] in eos or done >= trace.max_tokens
    while not finished:
        room = trace.max_tokens - done - 1
        draft: list[int] = []
        if proposer is not None and room > 0:
            draft = list(proposer.propose(context, room).token_ids[:room])
        n = common_prefix(draft, out[done:])
        clock.now += costs.step(1 + len(draft))
        if proposer is not None:
            proposer.on_verified(len(draft), n)
            if listener is not None and confidence:
                listener.on_target_confidence(confidence[done : done + n + 1])
        steps += 1
        proposed += len(draft)
        accepted += n
        for token in out[done : done + n + 1]:
            context.append(token)
            done += 1
            if token in eos or done >= trace.max_tokens:
                finished = True
                break
        if done >= len(out):
            finished = True
    return SimResult(clock.now, steps, done, proposed, accepted)


# -- policies ------------------------------------------------------------------------------


class Fixed:
    """Always ask the inner proposer for ``k``."""

    def __init__(self, inner: Proposer, k: int) -> None:
        self.inner, self.k = inner, k

    def start(self, prompt_ids: Sequence[int]) -> None:
        self.inner.start(prompt_ids)

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        if self.k == 0:
            return Proposal([])
        return self.inner.propose(context_ids, min(self.k, max_tokens))

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        self.inner.on_verified(num_proposed, num_accepted)

    def set_clock(self, clock: SimClock) -> None:
        """Pass the replay's clock on (a traced draft charges its time to it)."""
        set_inner = getattr(self.inner, "set_clock", None)
        if callable(set_inner):
            set_inner(clock)


class HfHeuristic(Fixed):
    """transformers' ``num_assistant_tokens_schedule="heuristic"``: +2 if all kept, else -1."""

    def __init__(self, inner: Proposer, max_k: int) -> None:
        super().__init__(inner, min(HF_HEURISTIC_START, max_k))
        self.max_k = max_k

    def start(self, prompt_ids: Sequence[int]) -> None:
        super().start(prompt_ids)
        self.k = min(HF_HEURISTIC_START, self.max_k)

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        super().on_verified(num_proposed, num_accepted)
        if num_proposed == 0:
            return
        if num_accepted == num_proposed:
            self.k = min(self.max_k, self.k + 2)
        else:
            self.k = max(1, self.k - 1)


class EmaTiers(Fixed):
    """A running mean of the acceptance rate chooses a tier of depths."""

    def __init__(self, inner: Proposer, max_k: int, *, allow_off: bool) -> None:
        super().__init__(inner, max_k)
        self.max_k, self.allow_off, self.rate = max_k, allow_off, 0.5

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        super().on_verified(num_proposed, num_accepted)
        if num_proposed:
            self.rate += EMA_WEIGHT * (num_accepted / num_proposed - self.rate)
        self.k = 0 if self.allow_off else 1
        for threshold, share in EMA_TIERS:
            if self.rate >= threshold:
                self.k = max(1, round(share * self.max_k))
                break
        if self.k == 0:
            self.rate += EMA_WEIGHT * (0.5 - self.rate)  # drift back so it tries again


class Ucb(Fixed):
    """UCB1 over ``k``; reward: tokens per second of the step over a plain step's speed."""

    def __init__(self, inner: Proposer, ks: Sequence[int], costs: CostTable) -> None:
        super().__init__(inner, ks[-1])
        self.ks, self.costs = list(ks), costs
        self.count = dict.fromkeys(self.ks, 0)
        self.total = dict.fromkeys(self.ks, 0.0)
        self.plays = 0

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        untried = [k for k in self.ks if self.count[k] == 0]
        if untried:
            self.k = untried[0]
        else:
            bonus = UCB_EXPLORATION * math.sqrt(2 * math.log(self.plays))
            self.k = max(
                self.ks,
                key=lambda k: self.total[k] / self.count[k] + bonus / math.sqrt(self.count[k]),
            )
        return super().propose(context_ids, max_tokens)

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        super().on_verified(num_proposed, num_accepted)
        speed = (num_accepted + 1) / self.costs.step(1 + num_proposed)
        self.count[self.k] += 1
        self.total[self.k] += speed * self.costs.step(1)
        self.plays += 1


class Oracle(Fixed):
    """Proposes exactly the prefix that will be accepted (needs the future: ``set_trace``).

    Over a traced draft model it also drafts only those tokens (the draft's time for them is
    still paid): the bound on what choosing ``k`` can gain."""

    def __init__(self, inner: Proposer, max_k: int) -> None:
        super().__init__(inner, max_k)
        self.truth: list[int] = []
        self.prompt_len = 0

    def set_trace(self, trace: Trace) -> None:
        self.truth = trace.output_ids
        self.prompt_len = len(trace.prompt_ids)

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        done = len(context_ids) - self.prompt_len
        peek = getattr(self.inner, "peek", None)
        if callable(peek):  # a costly proposer: ask it for the accepted tokens only
            ahead = peek(context_ids, min(self.k, max_tokens)).token_ids
            n = common_prefix(ahead, self.truth[done:])
            return self.inner.propose(context_ids, n) if n else Proposal([])
        proposal = super().propose(context_ids, max_tokens)
        n = common_prefix(proposal.token_ids, self.truth[done:])
        return Proposal(list(proposal.token_ids[:n]))


# -- running a table -----------------------------------------------------------------------


def run_policies(
    traces: TraceSet,
    policies: dict[str, Callable[[], Proposer | None]],
) -> dict[str, list[SimResult]]:
    """Every policy over every trace, in trace order (a policy may learn across requests)."""
    results: dict[str, list[SimResult]] = {}
    for name, make in policies.items():
        policy = make()
        clock = SimClock()
        set_clock = getattr(policy, "set_clock", None)
        if callable(set_clock):
            set_clock(clock)
        runs = []
        for trace in traces.traces:
            if isinstance(policy, Oracle):
                policy.set_trace(trace)
            before = clock.now
            result = simulate(trace, policy, traces.costs, clock)
            result.seconds = clock.now - before
            runs.append(result)
        results[name] = runs
    return results


def standard_policies(
    traces: TraceSet,
    inner: Callable[[], Proposer],
    max_k: int,
    strategies: Sequence[str] = (),
    *,
    draft: bool = False,
) -> dict[str, Callable[[], Proposer | None]]:
    """plain, fixed-1..max_k, hf-heuristic, ema-tiers, ucb, the strategies, oracle.

    ``draft``: ``inner`` is a traced draft model; the strategies then run around it (their
    ``wrap_proposer``), and transformers' default assisted generation joins the table."""
    costs = traces.costs
    policies: dict[str, Callable[[], Proposer | None]] = {"plain": lambda: None}
    for k in range(1, max_k + 1):
        policies[f"fixed-{k}"] = lambda k=k: Fixed(inner(), k)  # type: ignore[misc]
    policies["hf-heuristic"] = lambda: HfHeuristic(inner(), max_k)
    policies["ema-tiers"] = lambda: EmaTiers(inner(), max_k, allow_off=True)
    policies["ucb"] = lambda: Ucb(inner(), list(range(max_k + 1)), costs)
    if draft:
        policies["hf-assisted:default"] = lambda: Fixed(
            TracedDraft(traces, confidence_threshold=HF_ASSISTED_CONFIDENCE), HF_ASSISTED_TOKENS
        )
    for spec in strategies:
        policies[spec] = strategy_policy(spec, inner if draft else None)
    policies["oracle"] = lambda: Oracle(inner(), max_k)
    return policies


def strategy_policy(
    spec: str, draft: Callable[[], Proposer] | None = None
) -> Callable[[], Proposer | None]:
    """A strategy's proposer as the engine would build it, or around ``draft`` (a traced draft
    model) through its ``wrap_proposer``; a fixed-depth strategy (``num_speculative_tokens``)
    becomes that fixed k over the draft."""
    from sage.llm import get_strategy
    from sage.llm.proposer import ProposerContext

    strategy = get_strategy(spec)
    if draft is None:
        return lambda: strategy.make_proposer(ProposerContext())
    wrap = getattr(strategy, "wrap_proposer", None)
    if callable(wrap):
        return lambda: wrap(draft())
    k = getattr(strategy, "num_speculative_tokens", None)
    if isinstance(k, int) and k > 0:
        return lambda: Fixed(draft(), k)
    raise SystemExit(
        f"strategy {spec!r} can neither run around another proposer (wrap_proposer) nor "
        "has a fixed num_speculative_tokens: it cannot be replayed over a traced draft"
    )


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


def over_orders(
    traces: TraceSet,
    make: Callable[[], Proposer | None],
    plain: list[SimResult],
    orders: int,
) -> dict[str, dict[str, float]]:
    """A policy that learns across requests, replayed in ``orders`` orders of the traces
    (the given one, then seeded shuffles 1, 2, ...): per category, the mean, lowest and
    highest speedup over plain decoding. One order's figure moves by a few percent with which
    requests came first; the mean is what the policy does on such traffic."""
    import random
    import statistics

    per_group: dict[str, list[float]] = defaultdict(list)
    for seed in range(orders):
        order = list(range(len(traces.traces)))
        if seed:
            random.Random(seed).shuffle(order)
        shuffled = dataclasses.replace(traces, traces=[traces.traces[i] for i in order])
        runs = run_policies(shuffled, {"policy": make})["policy"]
        back: list[SimResult | None] = [None] * len(order)
        for position, i in enumerate(order):
            back[i] = runs[position]
        table = summarize(traces, {"plain": plain, "policy": [r for r in back if r]})
        for group, row in table["speedup"].items():
            per_group[group].append(row["policy"])
    return {
        group: {"mean": statistics.fmean(v), "min": min(v), "max": max(v)}
        for group, v in per_group.items()
    }


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sage.llm.bench.replay", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="plain greedy runs + measured pass costs -> traces JSON")
    rec.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    rec.add_argument("--questions", default=None)
    rec.add_argument("--limit", type=int, default=4, help="questions per category")
    rec.add_argument("--skip", type=int, default=0, help="skip the first N per category")
    rec.add_argument("--max-tokens", type=int, default=128)
    rec.add_argument("--max-pass", type=int, default=17, help="largest pass size measured")
    rec.add_argument("--out", type=Path, required=True)
    rep = sub.add_parser("run", help="replay policies on traces")
    rep.add_argument("traces", type=Path, nargs="+")
    rep.add_argument(
        "--inner",
        default="ngram",
        help="strategy whose proposer is replayed, or 'draft' for the traces' draft model",
    )
    rep.add_argument("--max-k", type=int, default=10)
    rep.add_argument("-s", "--strategy", action="append", default=[])
    rep.add_argument(
        "--pass-costs",
        default=None,
        help="comma-separated seconds of a pass of 1, 2, ... tokens, instead of the traces' "
        "measured table (the last value carries on to larger passes)",
    )
    rep.add_argument("--json", type=Path, default=None)
    rep.add_argument("--plot", type=Path, default=None)
    rep.add_argument(
        "--orders",
        type=int,
        default=1,
        help="also replay each -s strategy in this many orders of the traces (the given one, "
        "then seeded shuffles) and print each category's mean and range",
    )
    drf = sub.add_parser(
        "record-draft", help="add a draft model's predictions and measured costs to traces"
    )
    drf.add_argument("traces", type=Path)
    drf.add_argument("--draft", required=True, help="draft model: pack name or directory")
    drf.add_argument("--out", type=Path, required=True)
    conf = sub.add_parser(
        "record-confidence",
        help="add the target's probability of each output token to traces (teacher-forced)",
    )
    conf.add_argument("traces", type=Path)
    conf.add_argument("--target", default=None, help="default: the traces' own model")
    conf.add_argument("--out", type=Path, required=True)
    chk = sub.add_parser(
        "check", help="simulated vs measured speedup for the methods of a sage-llm bench JSON"
    )
    chk.add_argument("bench", type=Path, help="a sage-llm bench results JSON")
    chk.add_argument("traces", type=Path, nargs="+", help="traces of the bench's questions")
    chk.add_argument("--pass-costs", default=None, help="as for run")
    plo = sub.add_parser(
        "plot",
        help="draw a saved `run --json` summary (strategies at their mean over --orders)",
    )
    plo.add_argument("summary", type=Path, help="a JSON written by `run --json`")
    plo.add_argument("--out", type=Path, required=True, help="PNG to write")
    plo.add_argument(
        "-s",
        "--strategy",
        action="append",
        default=None,
        help="strategies to show (default: every one the summary replayed over orders)",
    )
    args = parser.parse_args(argv)
    if args.command == "plot":
        return _plot(args)
    if args.command == "record":
        return _record(args)
    if args.command == "check":
        return _check(args)
    if args.command == "record-draft":
        return _record_draft(args)
    if args.command == "record-confidence":
        return _record_confidence(args)
    return _run(args)


def _load(paths: Sequence[Path], pass_costs: str | None, max_k: int) -> TraceSet:
    sets = [TraceSet.load(p) for p in paths]
    traces = TraceSet(sets[0].model, [t for s in sets for t in s.traces], sets[0].costs)
    if pass_costs:
        try:
            seconds = [float(v) for v in pass_costs.split(",")]
        except ValueError:
            raise SystemExit(
                f"--pass-costs needs numbers separated by commas, got {pass_costs!r}"
            ) from None
        if not seconds or min(seconds) <= 0:
            raise SystemExit("--pass-costs needs positive numbers")
        traces.costs = dataclasses.replace(  # the draft's own costs stay as measured
            traces.costs,
            pass_seconds=seconds + [seconds[-1]] * (max_k + 1 - len(seconds)),
            prefill_seconds=traces.costs.prefill_seconds * seconds[0] / traces.costs.step(1),
            overhead_seconds=0.0,
            machine={},
        )
    return traces


def check(traces: TraceSet, bench: dict[str, Any]) -> list[dict[str, Any]]:
    """Per (method, category) of a bench run: replayed and measured speedup over plain.

    Only the bench's reference-engine methods are replayed (by their strategy spec), on the
    traces of the bench's questions, whose plain outputs must equal the bench's token for
    token (otherwise the traces are of another model or version, and this says so). A method
    with a ``draft_model_id`` runs over the traces' draft predictions (record-draft)."""
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
        drafted = "draft_model_id=" in spec
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


def _check(args: argparse.Namespace) -> int:
    traces = _load(args.traces, args.pass_costs, 64)
    try:
        rows = check(traces, json.loads(args.bench.read_text()))
    except ValueError as exc:  # traces of another model, or without the draft's predictions
        raise SystemExit(str(exc)) from None
    print("| method | category | simulated | measured | error |")
    print("| --- | --- | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['method']} | {row['category']} | {row['simulated']:.2f}x | "
            f"{row['measured']:.2f}x | {row['error']:+.0%} |"
        )
    cells = [abs(r["error"]) for r in rows if r["category"] != "all"]
    if cells:
        print(
            f"mean absolute error over {len(cells)} (method, category) cells: "
            f"{sum(cells) / len(cells):.1%} (largest {max(cells):.0%})"
        )
    return 0


def _record(args: argparse.Namespace) -> int:
    from sage.llm.bench.methods import load_engine
    from sage.llm.bench.questions import load_questions
    from sage.llm.bench.traces import record
    from sage.llm.engines.transformers.loading import set_cpu_environment
    from sage.llm.models import resolve_model

    set_cpu_environment()
    questions = load_questions(args.questions)
    picked = []
    seen: dict[str, int] = defaultdict(int)
    for q in questions:
        seen[q.category] += 1
        if args.skip < seen[q.category] <= args.skip + args.limit:
            picked.append(q)
    engine = load_engine(resolve_model(args.model))
    traceset = record(
        engine,
        picked,
        max_tokens=args.max_tokens,
        max_pass=args.max_pass,
        on_trace=lambda t: print(
            f"{t.category} {t.question_id}: {len(t.output_ids)} tokens, {t.plain_seconds:.1f}s",
            flush=True,
        ),
    )
    traceset.save(args.out)
    print("pass costs (s):", [round(c, 4) for c in traceset.costs.pass_seconds])
    return 0


def _run(args: argparse.Namespace) -> int:
    from sage.llm import get_strategy
    from sage.llm.proposer import ProposerContext

    traces = _load(args.traces, args.pass_costs, args.max_k)
    draft = args.inner == "draft"
    if draft:
        try:
            TracedDraft(traces)
        except ValueError as exc:
            raise SystemExit(str(exc)) from None

        def inner() -> Proposer:
            return TracedDraft(traces)

    else:
        inner_strategy = get_strategy(args.inner)

        def inner() -> Proposer:
            proposer = inner_strategy.make_proposer(ProposerContext())
            if proposer is None:
                raise SystemExit(f"strategy {args.inner!r} has no proposer to replay")
            return proposer

    policies = standard_policies(traces, inner, args.max_k, args.strategy, draft=draft)
    results = run_policies(traces, policies)
    summary = summarize(traces, results)
    columns = [
        *[f"fixed-{k}" for k in range(1, args.max_k + 1)],
        "best-fixed (category)",
        "best-fixed k",
        "best-fixed (request)",
        "hf-heuristic",
        "ema-tiers",
        "ucb",
        *(["hf-assisted:default"] if draft else []),
        *args.strategy,
        "oracle",
    ]
    print(format_table(summary, columns))
    if args.orders > 1:
        summary["orders"] = {"count": args.orders}
        cats = summary["categories"]
        print(f"\nover {args.orders} orders of the traces: mean speedup (lowest-highest)")
        print("| strategy | " + " | ".join(cats) + " |")
        print("| --- |" + " ---: |" * len(cats))
        for spec in args.strategy:
            make = strategy_policy(spec, inner if draft else None)
            spread = over_orders(traces, make, results["plain"], args.orders)
            summary["orders"][spec] = spread
            cells = [
                f"{spread[c]['mean']:.2f}x ({spread[c]['min']:.2f}-{spread[c]['max']:.2f})"
                for c in cats
            ]
            print(f"| {spec} | " + " | ".join(cells) + " |")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))
    if args.plot is not None:
        plot(with_order_means(summary), plot_columns(summary, args.strategy), args.plot)
    return 0


def _plot(args: argparse.Namespace) -> int:
    try:
        summary = json.loads(args.summary.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"cannot read {args.summary} as JSON: {exc}") from None
    if not isinstance(summary, dict) or "speedup" not in summary or "categories" not in summary:
        raise SystemExit(f"{args.summary} is not a summary written by `replay run --json`")
    held = summary["speedup"][summary["categories"][0]]
    strategies = args.strategy
    if strategies is None:
        strategies = [k for k in summary.get("orders", {}) if k != "count"]
    unknown = [s for s in strategies if s not in held]
    if unknown:
        raise SystemExit(
            f"{args.summary} holds no results for {', '.join(map(repr, unknown))}; "
            f"it has: {', '.join(held)}"
        )
    plot(with_order_means(summary), plot_columns(summary, strategies), args.out)
    print(f"wrote {args.out}")
    return 0


def _load_for_traces(name: str, traces: TraceSet) -> Any:
    """A model to run over ``traces`` as the draft proposer loads one: the traces' dtype,
    PyTorch's row-major weights."""
    from sage.llm.engines.transformers.loading import load_model, set_cpu_environment
    from sage.llm.models import resolve_model

    set_cpu_environment()
    dtype = traces.costs.machine.get("dtype", "torch.float32").removeprefix("torch.")
    model, _ = load_model(
        str(resolve_model(name)), dtype=dtype, require_tokenizer=False, weight_layout="row"
    )
    return model


def _record_draft(args: argparse.Namespace) -> int:
    from sage.llm.bench.draft_traces import record_draft

    traces = TraceSet.load(args.traces)
    model = _load_for_traces(args.draft, traces)
    record_draft(
        traces,
        model,
        args.draft,
        on_trace=lambda t: print(
            f"{t.category} {t.question_id}: draft agrees on "
            f"{sum(d == o for d, o in zip(t.draft_tokens, t.output_ids, strict=True))}"
            f"/{len(t.output_ids)} positions",
            flush=True,
        ),
    )
    traces.save(args.out)
    print(
        "draft feed costs (s):",
        dict(
            zip(
                traces.costs.draft_feed_tokens,
                [round(c, 4) for c in traces.costs.draft_feed_seconds],
                strict=True,
            )
        ),
    )
    return 0


def _record_confidence(args: argparse.Namespace) -> int:
    from sage.llm.bench.draft_traces import record_target_confidence

    traces = TraceSet.load(args.traces)
    model = _load_for_traces(args.target or traces.model, traces)
    try:
        record_target_confidence(
            traces,
            model,
            on_trace=lambda t: print(
                f"{t.category} {t.question_id}: mean target probability "
                f"{sum(t.target_confidence) / len(t.target_confidence):.3f}",
                flush=True,
            ),
        )
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    traces.save(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
