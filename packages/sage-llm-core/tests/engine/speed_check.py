"""The engine against transformers on one real model: a quick check of the speed targets.

    python packages/sage-llm-core/tests/engine/speed_check.py MODEL_DIR [--tokens 64]
        [--reps 5] [--categories translation,qa,...] [--json out.json]

For one Spec-Bench prompt per category it times, interleaved and ``--reps`` times each (the
median is reported, so a busy machine disturbs all four alike): ``model.generate`` (greedy),
the engine's plain decoding, transformers' prompt lookup (``prompt_lookup_num_tokens=k``,
``max_matching_ngram_size=n``) and the engine's n-gram proposer with the same k and n. EOS is
disabled so every method generates exactly ``--tokens`` tokens; outputs are checked for equality.
The full benchmark with every strategy and a plot is ``sage-llm bench``; this one is small
enough to run while changing the engine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts

QUESTIONS = (
    Path(__file__).resolve().parents[5] / "shared" / "data" / "spec_bench" / "question.jsonl"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--n", type=int, default=3)
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--categories", default="translation,summarization,qa,math_reasoning,rag")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from sage.llm.engines.transformers import TransformersEngine
    from sage_llm_strategy_ngram.proposer import NgramProposer

    loaded = TransformersEngine.from_pretrained(args.model)
    model = loaded.model
    model.generation_config.eos_token_id = None
    model.config.eos_token_id = None
    engine = TransformersEngine(model)  # no tokenizer: no EOS, exactly --tokens tokens each
    rows = [json.loads(line) for line in args.questions.read_text().splitlines() if line]
    results: list[dict[str, Any]] = []

    for category in args.categories.split(","):
        question = next(r for r in rows if r["category"] == category)
        ids = loaded.encode_prompt(question["turns"][0])

        def hf(ids: list[int] = ids, **kw: Any) -> tuple[float, list[int]]:
            start = time.perf_counter()
            out = model.generate(
                torch.tensor([ids]),
                max_new_tokens=args.tokens,
                do_sample=False,
                pad_token_id=0,
                **kw,
            )
            return time.perf_counter() - start, out[0, len(ids) :].tolist()

        def ours(proposer: Any, ids: list[int] = ids) -> tuple[float, list[int]]:
            start = time.perf_counter()
            result = engine.generate(ids, proposer=proposer, max_tokens=args.tokens)
            return time.perf_counter() - start, result.token_ids

        methods = {
            "generate": lambda: hf(),
            "plain": lambda: ours(None),
            "prompt_lookup": lambda: hf(
                prompt_lookup_num_tokens=args.k, max_matching_ngram_size=args.n
            ),
            "ngram": lambda: ours(NgramProposer(args.k, args.n)),
        }
        times: dict[str, list[float]] = {name: [] for name in methods}
        outputs: dict[str, list[int]] = {}
        for _ in range(args.reps):
            for name, run in methods.items():
                seconds, outputs[name] = run()
                times[name].append(seconds)
        med = {name: statistics.median(values) for name, values in times.items()}
        row = {
            "category": category,
            "prompt_tokens": len(ids),
            "plain_vs_generate": med["generate"] / med["plain"],
            "ngram_vs_prompt_lookup": med["prompt_lookup"] / med["ngram"],
            "ngram_vs_plain": med["plain"] / med["ngram"],
            "identical": all(out == outputs["generate"] for out in outputs.values()),
            "median_seconds": med,
        }
        results.append(row)
        print(
            f"{category:15s} prompt={len(ids):4d}  plain/generate={row['plain_vs_generate']:.3f}x  "
            f"ngram/prompt-lookup={row['ngram_vs_prompt_lookup']:.3f}x  "
            f"ngram/plain={row['ngram_vs_plain']:.3f}x  identical={row['identical']}",
            flush=True,
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "model": args.model,
                    "k": args.k,
                    "n": args.n,
                    "tokens": args.tokens,
                    "reps": args.reps,
                    "results": results,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
