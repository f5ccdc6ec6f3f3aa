"""Does an attached proposer that never proposes slow the reference engine's plain steps?

A speculative method that switches itself off (dynamic-lookahead with a model draft does on
most categories on a CPU) runs plain steps through the same loop with a proposer attached. This
times seconds per decode step with no proposer and with one that always returns an empty
proposal, interleaved and alternating which goes first, on the default model pack. Prints a
table and saves JSON.

    python benchmarks/proposer_overhead.py --rounds 6 --max-tokens 64 --out overhead.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path

from sage.llm.bench.methods import load_engine
from sage.llm.models import resolve_model
from sage.llm.proposer import Proposal

PROMPT = "Write a long story about a cat who learns to program computers."


class NeverProposes:
    """A proposer that is asked every step and never proposes: every step is plain."""

    def start(self, prompt_ids: Sequence[int]) -> None: ...

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        return Proposal([])

    def on_verified(self, num_proposed: int, num_accepted: int) -> None: ...


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("proposer_overhead.json"))
    args = parser.parse_args()

    engine = load_engine(resolve_model(args.model))
    prompt = engine.encode_prompt(PROMPT, chat=True)
    per_step: dict[str, list[float]] = {"plain": [], "never-proposes": []}
    for r in range(args.rounds):
        order = ["plain", "never-proposes"] if r % 2 == 0 else ["never-proposes", "plain"]
        for name in order:
            proposer = NeverProposes() if name == "never-proposes" else None
            m = engine.generate(prompt, proposer=proposer, max_tokens=args.max_tokens).metrics
            per_step[name].append(m.verify_time_s / m.num_steps)
    print("| loop | median s/step | min | max |")
    print("| --- | ---: | ---: | ---: |")
    for name, values in per_step.items():
        print(
            f"| {name} | {statistics.median(values):.4f} | {min(values):.4f} | {max(values):.4f} |"
        )
    args.out.write_text(json.dumps({"model": args.model, "seconds_per_step": per_step}, indent=1))


if __name__ == "__main__":
    main()
