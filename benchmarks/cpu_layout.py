"""Benchmark: the cost of one forward pass by number of tokens, row- vs column-major weights.

A verify pass scores ``1 + k`` tokens; speculation pays when that costs about what one token
costs. This loads a model twice (PyTorch's default row-major weights, then the engine's
column-major layout, see ``sage.llm.engines.transformers.layout``), fills a KV cache with
``--context`` tokens and times passes of 1..``--max-tokens`` tokens (best of ``--repeat``
rounds of 5, the two layouts alternating round by round). Prints a table and writes JSON.

    python benchmarks/cpu_layout.py --model qwen2.5-coder-0.5b-instruct
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def load(model: str, layout: str) -> Any:
    from sage.llm.engines.transformers.loading import load_model

    loaded, _ = load_model(model, device="cpu", weight_layout=layout, require_tokenizer=False)
    return loaded


def time_pass(model: Any, cache: Any, length: int, rounds: int = 5) -> float:
    import torch

    tokens = torch.randint(100, 5000, (1, length))
    start = time.perf_counter()
    for _ in range(rounds):
        model(input_ids=tokens, past_key_values=cache, use_cache=True, logits_to_keep=length)
        cache.crop(-length)
    return (time.perf_counter() - start) / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--context", type=int, default=400)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench-results/cpu_layout.json"))
    args = parser.parse_args()

    import torch
    from transformers import DynamicCache

    models = {layout: load(args.model, layout) for layout in ("row", "column")}
    prefix = torch.randint(100, 5000, (1, args.context))
    caches = {}
    with torch.inference_mode():
        for layout, model in models.items():
            caches[layout] = DynamicCache(config=model.config)
            model(input_ids=prefix, past_key_values=caches[layout], use_cache=True)
        best: dict[str, dict[int, float]] = {layout: {} for layout in models}
        lengths = range(1, args.max_tokens + 1)
        for _ in range(args.repeat):
            for length in lengths:
                for layout, model in models.items():
                    seconds = time_pass(model, caches[layout], length)
                    previous = best[layout].get(length, float("inf"))
                    best[layout][length] = min(previous, seconds)

    print(f"{args.model}: forward pass over a {args.context}-token cache, best of {args.repeat}")
    header = ("tokens", "row ms", "x 1 tok", "column ms", "x 1 tok", "col/row")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (6, 8, 8, 10, 8, 8), strict=True)))
    for length in lengths:
        row, col = best["row"][length], best["column"][length]
        print(
            f"{length:>6} {row * 1e3:>8.1f} {row / best['row'][1]:>8.2f} "
            f"{col * 1e3:>10.1f} {col / best['column'][1]:>8.2f} {col / row:>8.2f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "model": args.model,
        "context": args.context,
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "ms": {layout: {n: s * 1e3 for n, s in rows.items()} for layout, rows in best.items()},
    }
    args.out.write_text(json.dumps(result, indent=2))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
