"""The engine's CUDA check: losslessness tests on the GPU, then a short speed comparison.

Run on a machine with a CUDA GPU (never in CI; the suite itself never needs a GPU)::

    python packages/sage-llm-core/tests/engine/cuda_check.py [OUT_DIR]

1. The losslessness and proposer tests with their tiny models on ``cuda``
   (``SAGE_LLM_TEST_DEVICE=cuda``).
2. Speed on a random-weight model shaped like SmolLM2-135M (no weights travel; acceptance on
   random weights says nothing about real text, the per-step cost does): plain decoding through
   the engine vs ``model.generate``, and n-gram vs transformers' prompt lookup with the same k
   and n, median of interleaved repetitions, greedy outputs checked for equality.
Writes ``cuda_check.json`` to OUT_DIR (default: the current directory) and prints a table.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PACKAGES = HERE.parents[2]


DEVICE = os.environ.get("SAGE_LLM_CHECK_DEVICE", "cuda")  # "cpu" only to try the script out


def sync() -> None:
    import torch

    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def run_tests() -> dict[str, object]:
    env = {**os.environ, "SAGE_LLM_TEST_DEVICE": DEVICE}
    paths = [
        str(HERE / "test_lossless.py"),
        str(HERE / "test_sampling_lossless.py"),
        str(PACKAGES / "sage-llm-strategy-ngram" / "tests" / "test_ngram_proposer.py"),
        str(PACKAGES / "sage-llm-strategy-draft" / "tests" / "test_draft_proposer.py"),
        str(PACKAGES / "sage-llm-strategy-dynamic" / "tests" / "test_dynamic_proposer.py"),
    ]
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *paths],
        env=env,
        capture_output=True,
        text=True,
    )
    print(proc.stdout[-4000:], proc.stderr[-2000:], flush=True)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    return {"returncode": proc.returncode, "summary": tail, "seconds": time.perf_counter() - start}


def bench(max_new: int, reps: int) -> dict[str, object]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )
    results: dict[str, object] = {"model": "random-weight SmolLM2-135M shape", "tokens": max_new}
    g = torch.Generator().manual_seed(1)
    part = torch.randint(0, 49152, (200,), generator=g).tolist()
    prompt = part + part[:100]  # something for prompt lookup to find
    for dtype in (torch.float32, torch.bfloat16):
        key = str(dtype).replace("torch.", "")
        results[key] = bench_dtype(LlamaForCausalLM(config), prompt, dtype, max_new, reps)
        print(key, json.dumps(results[key], indent=1), flush=True)
    results["device"] = torch.cuda.get_device_name() if DEVICE.startswith("cuda") else DEVICE
    return results


def bench_dtype(
    model: Any, prompt: list[int], dtype: Any, max_new: int, reps: int
) -> dict[str, Any]:
    """Median seconds of the four methods on one model in one dtype, interleaved."""
    import torch

    from sage.llm.engines.transformers import TransformersEngine
    from sage_llm_strategy_ngram.proposer import NgramProposer

    model = model.to(DEVICE, dtype=dtype).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    engine = TransformersEngine(model)
    ids = torch.tensor([prompt], device=DEVICE)

    def hf(**kw: object) -> tuple[float, list[int]]:
        sync()
        t = time.perf_counter()
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new,
            min_new_tokens=max_new,
            do_sample=False,
            **kw,
        )
        sync()
        return time.perf_counter() - t, out[0, len(prompt) :].tolist()

    def ours(proposer: object) -> tuple[float, list[int]]:
        sync()
        t = time.perf_counter()
        r = engine.generate(prompt, proposer=proposer, max_tokens=max_new)  # type: ignore[arg-type]
        sync()
        return time.perf_counter() - t, r.token_ids

    hf()
    ours(None)
    times: dict[str, list[float]] = {
        "generate": [],
        "plain": [],
        "prompt_lookup": [],
        "ngram": [],
    }
    outs: dict[str, list[int]] = {}
    for _ in range(reps):
        for name, fn in (
            ("generate", lambda: hf()),
            ("plain", lambda: ours(None)),
            (
                "prompt_lookup",
                lambda: hf(prompt_lookup_num_tokens=5, max_matching_ngram_size=3),
            ),
            ("ngram", lambda: ours(NgramProposer(5, 3))),
        ):
            seconds, tokens = fn()
            times[name].append(seconds)
            outs[name] = tokens
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "median_seconds": med,
        "plain_vs_generate": med["generate"] / med["plain"],
        "ngram_vs_prompt_lookup": med["prompt_lookup"] / med["ngram"],
        "ngram_vs_plain": med["plain"] / med["ngram"],
        "plain_equals_generate": outs["plain"] == outs["generate"],
        "ngram_equals_plain": outs["ngram"] == outs["plain"],
    }


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
    tokens = int(os.environ.get("SAGE_LLM_CHECK_TOKENS", "128"))
    reps = int(os.environ.get("SAGE_LLM_CHECK_REPS", "5"))
    tests = run_tests() if os.environ.get("SAGE_LLM_CHECK_TESTS", "1") == "1" else {}
    report = {"tests": tests, "bench": bench(tokens, reps)}
    (out / "cuda_check.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report["tests"]), flush=True)


if __name__ == "__main__":
    main()
