"""What one step of the suffix proposer costs: the pure-Python index, arctic-inference's C++
cache and n-gram lookup, on the same token streams (no model, so only the proposer's time).

Each request starts with a prompt, then ``--steps`` steps each commit 1-4 tokens and ask for
a proposal of up to ``--k`` tokens; requests run in order through one proposer, so the suffix
proposers' cross-request caches fill as in serving. The text is this repository's Python
sources, as byte-level token ids (code that repeats itself, as agents' requests do). Prints
microseconds per start and per step, and saves JSON with ``--out``.

    python benchmarks/suffix_index_cost.py --requests 20 --prompt 1500 --steps 128
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def corpus() -> list[int]:
    text = "".join(p.read_text("utf-8") for p in sorted((ROOT / "packages").rglob("*.py")))
    return list(text.encode("utf-8"))


def proposers(k: int) -> dict[str, Any]:
    from sage_llm_strategy_ngram.proposer import NgramProposer
    from sage_llm_strategy_suffix.proposer import (
        ArcticSuffixProposer,
        SuffixProposer,
        arctic_available,
    )

    out: dict[str, Any] = {
        "ngram (n=5)": lambda: NgramProposer(k, 5, 2),
        "suffix python": lambda: SuffixProposer(k),
    }
    if arctic_available():
        out["suffix arctic"] = lambda: ArcticSuffixProposer(k)
    return out


def run(make: Any, streams: list[tuple[list[int], list[int]]], k: int) -> dict[str, float]:
    proposer = make()
    start_s = step_s = 0.0
    steps = proposed = 0
    rng = random.Random(0)
    for prompt, output in streams:
        t0 = time.perf_counter()
        proposer.start(prompt)
        start_s += time.perf_counter() - t0
        context = list(prompt)
        i = 0
        while i < len(output):
            n = rng.randint(1, 4)
            context.extend(output[i : i + n])
            i += n
            t0 = time.perf_counter()
            proposal = proposer.propose(context, k)
            proposer.on_verified(len(proposal), 0)
            step_s += time.perf_counter() - t0
            steps += 1
            proposed += len(proposal)
        finish = getattr(proposer, "finish", None)
        if finish is not None:
            t0 = time.perf_counter()
            finish(output)
            start_s += time.perf_counter() - t0
    return {
        "us_per_request_start_and_finish": 1e6 * start_s / len(streams),
        "us_per_step": 1e6 * step_s / steps,
        "tokens_proposed_per_step": proposed / steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--prompt", type=int, default=1500)
    parser.add_argument("--steps", type=int, default=128, help="output tokens per request")
    parser.add_argument("--k", type=int, default=24)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    text = corpus()
    rng = random.Random(1)
    streams = []
    for _ in range(args.requests):
        at = rng.randrange(len(text) - args.prompt - args.steps)
        prompt = text[at : at + args.prompt]
        # the output: partly a copy from the prompt, partly text from elsewhere
        copy = rng.randrange(args.prompt - args.steps)
        other = rng.randrange(len(text) - args.steps)
        half = args.steps // 2
        streams.append((prompt, prompt[copy : copy + half] + text[other : other + half]))
    results = {name: run(make, streams, args.k) for name, make in proposers(args.k).items()}
    for name, r in results.items():
        print(
            f"{name:15s} {r['us_per_step']:8.1f} us/step  "
            f"{r['us_per_request_start_and_finish']:10.0f} us/request (start+finish)  "
            f"{r['tokens_proposed_per_step']:.2f} tokens proposed/step"
        )
    if args.out:
        args.out.write_text(
            json.dumps({"args": vars(args) | {"out": str(args.out)}, "results": results}, indent=2)
        )


if __name__ == "__main__":
    main()
