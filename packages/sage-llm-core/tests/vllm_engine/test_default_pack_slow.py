"""The default model pack through ``sage-llm generate --engine vllm``, against the reference engine.

Both engines get the same chat-templated prompt (``sage.llm.prompts``) and float32 weights, so
greedy decoding must give the same tokens; vLLM's CPU kernels (attention, fused RMSNorm) round
differently from PyTorch's, so a near-tie could in principle flip a token: docs/vllm.md gives
the measured divergence (none in float32 on this prompt; bfloat16 differs, as expected).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from vllm_testutils import needs_builtins, needs_vllm

from sage.llm.bench.runner import first_difference
from sage.llm.models import cached_path, default_pack_name, get_pack

PROMPT = """Rename the function `compute_total` to `sum_prices` everywhere and return the code.

```python
def compute_total(items):
    total = 0
    for item in items:
        total += item.price * item.quantity
    return total


def report(orders):
    lines = []
    for order in orders:
        lines.append(f"{order.id}: {compute_total(order.items):.2f}")
    return "\\n".join(lines)
```"""
MAX_TOKENS = 64


@pytest.mark.slow
@needs_vllm
@needs_builtins
def test_generate_engine_vllm_equals_the_reference_engine_on_the_default_pack() -> None:
    pack = get_pack(default_pack_name())
    path = cached_path(pack)
    if path is None:
        pytest.skip(f"default model pack {pack.name!r} is not cached: sage-llm models pull")
    pytest.importorskip("transformers", reason="the reference engine needs transformers")
    command = [
        *(sys.executable, "-m", "sage.llm", "generate", "--engine", "vllm"),
        *("--strategy", "ngram", "--dtype", "float32", "--max-tokens", str(MAX_TOKENS)),
        *("--json", PROMPT),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=900, env={**os.environ}, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    vllm_run = json.loads(done.stdout)  # stdout holds the document alone

    from sage.llm.engines.transformers import TransformersEngine

    engine = TransformersEngine.from_pretrained(str(path), device="cpu", dtype="float32")
    prompt_ids = engine.encode_prompt(PROMPT)  # the chat template, as both engines apply it
    assert prompt_ids != engine.encode_prompt(PROMPT, chat=False)
    assert vllm_run["prompt_tokens"] == len(prompt_ids)
    reference = engine.generate(PROMPT, max_tokens=MAX_TOKENS).token_ids

    diverges_at = first_difference(vllm_run["token_ids"], list(reference))
    assert diverges_at is None, (
        f"vLLM (ngram, float32) differs from the reference engine's plain greedy output at "
        f"token {diverges_at}: {vllm_run['token_ids'][diverges_at:][:8]} vs "
        f"{list(reference)[diverges_at:][:8]}"
    )
    metrics = vllm_run["metrics"]
    assert metrics["num_drafts"] > 0, metrics
    assert metrics["num_accepted_tokens"] > 0, metrics
