"""The real default model through the reference engine (needs the pack in the cache)."""

from __future__ import annotations

import pytest

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


@pytest.mark.slow
def test_default_model_ngram_is_lossless_and_accepts_copied_tokens() -> None:
    pack = get_pack(default_pack_name())
    path = cached_path(pack)
    if path is None:
        pytest.skip(
            f"default model pack {pack.name!r} is not in the cache; run "
            f"`sage-llm models pull {pack.name}` (or set SAGE_LLM_CACHE_DIR) to run this test"
        )
    pytest.importorskip("torch", reason="the reference engine needs sage-llm-core[transformers]")
    pytest.importorskip("transformers", reason="the reference engine needs transformers")
    engine_module = pytest.importorskip(
        "sage.llm.engines.transformers.engine", reason="the reference engine is not available"
    )
    pytest.importorskip("sage_llm_strategy_ngram", reason="sage-llm-strategy-ngram not installed")
    engine = engine_module.TransformersEngine.from_pretrained(str(path))
    plain = engine.generate(PROMPT, max_tokens=48)
    spec = engine.generate(PROMPT, strategy="ngram", max_tokens=48)
    assert spec.token_ids == plain.token_ids
    assert "sum_prices" in spec.text
    # The answer copies the prompt's code, so prompt lookup must have had drafts accepted.
    assert spec.metrics.num_accepted_tokens > 0
