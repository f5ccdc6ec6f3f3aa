"""What does reporting the target's confidence cost per step?

The reference engine computes the target's probability of each committed token (one
log-softmax over the committed rows of the verify pass's logits) only for proposers that
listen (``ConfidenceAwareProposer``). This times exactly that computation, the engine's own
``_token_probabilities``, on random float32 logits of a vocabulary's width for 1 to
``--rows`` rows (a step commits ``1 + accepted`` tokens), median of ``--repeats`` runs.
Prints a table and saves JSON.

    python benchmarks/confidence_cost.py --vocab 151936 --out docs/data/confidence_cost.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", type=int, default=151_936, help="Qwen2.5's vocabulary")
    parser.add_argument("--rows", type=int, default=11)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from sage.llm.engines.transformers.engine import _token_probabilities

    generator = torch.Generator().manual_seed(0)
    table = {}
    print(f"| rows | ms per step (median of {args.repeats}) |")
    print("| ---: | ---: |")
    for rows in range(1, args.rows + 1):
        logits = torch.randn(rows, args.vocab, generator=generator)
        tokens = torch.randint(args.vocab, (rows,), generator=generator).tolist()
        _token_probabilities(logits, tokens)  # warm-up
        samples = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            _token_probabilities(logits, tokens)
            samples.append(time.perf_counter() - start)
        table[rows] = statistics.median(samples) * 1e3
        print(f"| {rows} | {table[rows]:.3f} |")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        threads = torch.get_num_threads()
        payload = {"vocab": args.vocab, "threads": threads, "ms_by_rows": table}
        args.out.write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
