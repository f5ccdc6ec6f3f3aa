"""Helpers of the vLLM tests: shared constants and tiny models that vLLM can load.

CPU attention needs a head size of 32, 64, 80, ...: hidden 64 with 2 heads (head_dim 32) is the
smallest shape that works. The tokenizer is a byte-level word table, so any text round-trips
without downloading anything.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

HAS_VLLM = importlib.util.find_spec("vllm") is not None
HAS_TORCH = importlib.util.find_spec("torch") is not None and (
    importlib.util.find_spec("transformers") is not None
)

CPU_ENGINE_ARGS = {
    "max_model_len": 256,
    "enforce_eager": True,
    "dtype": "float32",
    # An explicit KV-cache size: vLLM's CPU default reserves 92% of RAM and refuses to start
    # on a shared machine.
    "kv_cache_memory_bytes": 64 * 1024 * 1024,
}
"""Engine arguments that start vLLM's CPU backend quickly on a tiny model."""

BUILTIN_STRATEGY_MODULES = (
    "sage_llm_strategy_ngram",
    "sage_llm_strategy_draft",
    "sage_llm_strategy_dynamic",
)
HAS_BUILTINS = all(importlib.util.find_spec(m) is not None for m in BUILTIN_STRATEGY_MODULES)

needs_vllm = pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not installed (nox -s vllm)")
needs_builtins = pytest.mark.skipif(
    not HAS_BUILTINS, reason="needs the built-in strategy distributions (nox -s vllm)"
)


def build_tiny_llama(path: Path, *, vocab_size: int = 512, seed: int = 0, layers: int = 2) -> Path:
    """Write config, weights (safetensors) and tokenizer of a random Llama into ``path``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from sage.llm.testing.tiny import save_byte_tokenizer

    path.mkdir(parents=True, exist_ok=True)
    save_byte_tokenizer(path, vocab_size)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=32,
        max_position_embeddings=512,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).to(torch.float32).save_pretrained(path, safe_serialization=True)
    return path


def write_config_only(path: Path, *, vocab_size: int) -> Path:
    """A directory with just a config.json: enough for checks that read the vocabulary."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(
        json.dumps({"model_type": "llama", "vocab_size": vocab_size}), encoding="utf-8"
    )
    return path
