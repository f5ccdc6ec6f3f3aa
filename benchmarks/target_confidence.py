"""Does the target's own confidence on plain steps predict how much of a draft it would accept?

    python benchmarks/target_confidence.py                   # the 1.5B/0.5B draft traces
    python benchmarks/target_confidence.py T1.json T2.json --target M --out result.json

While speculation is off, a model draft teaches the controller nothing unless it is run (a
probe), and a probe costs several plain steps where the draft is poor; with the 1.5B target
and the 0.5B draft on the 2-core VM that budget lets the controller probe about once per 150
plain steps, so it never finds the math requests where fixed k=8 runs 1.07x-1.45x
(docs/notes/dynamic-lookahead-tuning.md). The target's probability of the token it picks comes with
every plain step for free. This measures, on draft traces (which hold the draft's greedy token at
every output position), how well that probability predicts the draft's agreement: per position,
and from the mean over the previous ``--window`` positions (what a controller would know)
to the accepted run of a ``--depth``-token draft at the next step. One teacher-forced forward
pass of the target per trace, unless the traces hold it (``replay record-confidence``); prints
tables and writes a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "benchmarks" / "traces" / "qwen2.5-coder-1.5b-draft-0.5b"
POSITION_BINS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99)
WINDOW_BINS = (0.0, 0.7, 0.85, 0.93, 0.97, 0.99)


def bin_of(value: float, edges: tuple[float, ...]) -> float:
    return max(edge for edge in edges if value >= edge)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "traces",
        nargs="*",
        type=Path,
        default=[Path(f"{TRACES}-{s}.json") for s in ("specbench-1-3", "specbench-4-6", "heldout")],
    )
    parser.add_argument("--target", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "data" / "target_confidence.json"
    )
    args = parser.parse_args()

    from sage.llm.bench.draft_traces import record_target_confidence
    from sage.llm.bench.traces import TraceSet, common_prefix
    from sage.llm.engines.transformers.loading import load_model, set_cpu_environment
    from sage.llm.models import resolve_model

    model: Any = None  # only for traces recorded without the target's confidence
    per_position: dict[float, list[int]] = {edge: [0, 0] for edge in POSITION_BINS}
    per_window: dict[float, list[int]] = {edge: [] for edge in WINDOW_BINS}
    requests: list[dict[str, Any]] = []
    by_prompt: dict[tuple[int, ...], list[float]] = {}
    for path in args.traces:
        traceset = TraceSet.load(path)
        if any(not t.target_confidence for t in traceset.traces):
            if model is None:
                set_cpu_environment()
                model, _ = load_model(
                    str(resolve_model(args.target)),
                    dtype="float32",
                    require_tokenizer=False,
                    weight_layout="row",
                )
            try:
                record_target_confidence(traceset, model)
            except ValueError as exc:
                raise SystemExit(f"{path}: {exc}") from None
        for trace in traceset.traces:
            if not trace.draft_tokens:
                raise SystemExit(f"{path}: no draft predictions (run `replay record-draft`)")
            confidence = trace.target_confidence  # `replay record-confidence`
            by_prompt[tuple(trace.prompt_ids)] = confidence
            agrees = [d == o for d, o in zip(trace.draft_tokens, trace.output_ids, strict=True)]
            for c, ok in zip(confidence[1:], agrees[1:], strict=True):  # [0] is never drafted
                cell = per_position[bin_of(c, POSITION_BINS)]
                cell[0] += ok
                cell[1] += 1
            for i in range(args.window + 1, len(agrees) - args.depth):
                seen = statistics.fmean(confidence[i - args.window : i])
                run = common_prefix(
                    trace.draft_tokens[i : i + args.depth], trace.output_ids[i : i + args.depth]
                )
                per_window[bin_of(seen, WINDOW_BINS)].append(run)
            requests.append(
                {
                    "question_id": trace.question_id,
                    "category": trace.category,
                    "tokens": len(agrees),
                    "target_confidence": statistics.fmean(confidence),
                    "draft_agreement": statistics.fmean(agrees),
                }
            )
    print("P(draft token = target's) by the target's probability of its token at that position:")
    for edge, (ok, n) in per_position.items():
        print(f"  >= {edge:.2f}: {ok / n if n else 0.0:.2f}  (n={n})")
    print(
        f"\nmean target probability over the previous {args.window} positions -> accepted run "
        f"of a {args.depth}-token draft at the next step:"
    )
    windows = {}
    for edge, runs in per_window.items():
        if runs:
            full = sum(r == args.depth for r in runs) / len(runs)
            windows[edge] = {"mean_run": statistics.fmean(runs), "full_share": full, "n": len(runs)}
            print(
                f"  >= {edge:.2f}: mean run {windows[edge]['mean_run']:.2f}, all {args.depth} "
                f"accepted {full:.0%}  (n={len(runs)})"
            )
    correlation = statistics.correlation(
        [r["target_confidence"] for r in requests], [r["draft_agreement"] for r in requests]
    )
    print(
        f"\nper request: correlation of mean target probability and draft agreement "
        f"{correlation:.2f} ({len(requests)} requests)"
    )
    rules = replay_rules(args.traces, by_prompt, args.window)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "target": args.target,
                "traces": [p.name for p in args.traces],
                "window": args.window,
                "depth": args.depth,
                "per_position": {
                    str(e): {"agreement": ok / n if n else None, "n": n}
                    for e, (ok, n) in per_position.items()
                },
                "per_window": {str(e): v for e, v in windows.items()},
                "request_correlation": correlation,
                "requests": requests,
                "rule_replay": rules,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {args.out}")


class ConfidenceRule:
    """The naive use of the signal, for comparison: draft ``k`` tokens whenever the target's
    mean probability over the last ``window`` committed tokens is at least ``threshold``."""

    def __init__(
        self,
        draft: Any,
        by_prompt: dict[tuple[int, ...], list[float]],
        k: int,
        threshold: float,
        window: int,
    ) -> None:
        self.draft, self.by_prompt = draft, by_prompt
        self.k, self.threshold, self.window = k, threshold, window

    def set_clock(self, clock: Any) -> None:
        self.draft.set_clock(clock)

    def start(self, prompt_ids: Any) -> None:
        self.draft.start(prompt_ids)
        self.prompt_length = len(prompt_ids)
        self.confidence = self.by_prompt[tuple(prompt_ids)]

    def propose(self, context_ids: Any, max_tokens: int) -> Any:
        from sage.llm.proposer import Proposal

        i = len(context_ids) - self.prompt_length  # output tokens committed so far
        recent = self.confidence[i - self.window : i]
        if i >= self.window and statistics.fmean(recent) >= self.threshold:
            return self.draft.propose(context_ids, min(self.k, max_tokens))
        return Proposal([])

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        self.draft.on_verified(num_proposed, num_accepted)


def replay_rules(
    paths: list[Path], by_prompt: dict[tuple[int, ...], list[float]], window: int
) -> dict[str, dict[str, float]]:
    """Replay dynamic-lookahead and the naive rule over the traces' draft (speedup over plain,
    per category), and count the requests where dynamic-lookahead drafts nothing at all."""
    from sage.llm.bench.draft_traces import TracedDraft
    from sage.llm.bench.replay import load_traces, run_policies, strategy_policy, summarize

    traces = load_traces(paths, None, 10)
    policies: dict[str, Any] = {
        "plain": lambda: None,
        "dynamic-lookahead": strategy_policy("dynamic-lookahead", lambda: TracedDraft(traces)),
    }
    for k in (6, 8):
        for threshold in (0.9, 0.93, 0.95, 0.97):
            policies[f"rule k={k} >= {threshold}"] = lambda k=k, t=threshold: ConfidenceRule(
                TracedDraft(traces), by_prompt, k, t, window
            )
    results = run_policies(traces, policies)
    summary = summarize(traces, results)
    speedup = {
        name: {group: summary["speedup"][group][name] for group in summary["categories"]}
        for name in policies
    }
    silent = sum(r.proposed == 0 for r in results["dynamic-lookahead"])
    print(f"\ndynamic-lookahead drafts nothing in {silent} of {len(traces.traces)} requests")
    print("replayed speedup over plain decoding (the traces' costs):")
    out = {}
    for name in policies:
        if name == "plain":
            continue
        out[name] = speedup[name]
        print(f"  {name:24} " + "  ".join(f"{c[:6]} {v:.2f}" for c, v in speedup[name].items()))
    return out | {"dynamic_silent_requests": {"count": silent, "of": len(traces.traces)}}


if __name__ == "__main__":
    main()
