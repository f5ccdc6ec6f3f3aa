"""Tiny targets and heads for the eagle tests: config-only folders for the checks, and real
random weights (safetensors) that vLLM loads for the end-to-end tests.

The shapes follow vLLM's CPU backend: hidden 64 with 2 heads (head_dim 32) is the smallest it
runs. Heads are written by hand in the layouts vLLM 0.32 loads (``llama_eagle.py``,
``llama_eagle3.py``, ``mimo_mtp.py``), so no published head is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HIDDEN = 64
VOCAB = 512
LAYERS = 2
_SHAPE = {
    "hidden_size": HIDDEN,
    "intermediate_size": 2 * HIDDEN,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "max_position_embeddings": 512,
    "rms_norm_eps": 1e-6,
    "hidden_act": "silu",
    "bos_token_id": 1,
    "eos_token_id": 2,
    "tie_word_embeddings": False,
}


def write_config(path: Path, **config: Any) -> Path:
    """A folder holding only config.json: what the checks read."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return path


def target_config(**overrides: Any) -> dict[str, Any]:
    """A Llama target's config (2 layers, hidden 64, vocabulary 512)."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "num_hidden_layers": LAYERS,
        "vocab_size": VOCAB,
        **_SHAPE,
        **overrides,
    }


def eagle_config(**overrides: Any) -> dict[str, Any]:
    """An EAGLE-1/2 head's config (the yuhuili layout: a one-layer Llama)."""
    return {**target_config(num_hidden_layers=1), **overrides}


def eagle3_config(**overrides: Any) -> dict[str, Any]:
    """An EAGLE-3 head's config in the Hugging Face layout."""
    return {
        **target_config(num_hidden_layers=1, architectures=["LlamaForCausalLMEagle3"]),
        "draft_vocab_size": VOCAB,
        "target_hidden_size": HIDDEN,
        "eagle_aux_hidden_state_layer_ids": [0, 1, 2],
        **overrides,
    }


def speculators_eagle3_config(**overrides: Any) -> dict[str, Any]:
    """An EAGLE-3 head's config in the speculators layout (the layer under
    ``transformer_layer_config``)."""
    layer = target_config(num_hidden_layers=1)
    layer.pop("architectures")
    return {
        "speculators_model_type": "eagle3",
        "architectures": ["Eagle3Speculator"],
        "transformer_layer_config": layer,
        "draft_vocab_size": VOCAB // 2,
        "target_hidden_size": HIDDEN,
        "speculators_config": {
            "proposal_methods": [{"speculative_tokens": 3}],
            "verifier": {"name_or_path": "target", "architectures": ["LlamaForCausalLM"]},
        },
        **overrides,
    }


def write_tokenizer(path: Path) -> None:
    """A byte-level word tokenizer of VOCAB entries (any text round-trips, no download)."""
    from sage.llm.testing.tiny import save_byte_tokenizer

    save_byte_tokenizer(path, VOCAB)


def _decoder_layer(prefix: str, qkv_in: int, seed: int) -> dict[str, Any]:
    import torch

    g = torch.Generator().manual_seed(seed)

    def w(*shape: int) -> Any:
        return torch.randn(*shape, generator=g) * 0.05

    inter = 2 * HIDDEN
    return {
        f"{prefix}self_attn.q_proj.weight": w(HIDDEN, qkv_in),
        f"{prefix}self_attn.k_proj.weight": w(HIDDEN, qkv_in),
        f"{prefix}self_attn.v_proj.weight": w(HIDDEN, qkv_in),
        f"{prefix}self_attn.o_proj.weight": w(HIDDEN, HIDDEN),
        f"{prefix}mlp.gate_proj.weight": w(inter, HIDDEN),
        f"{prefix}mlp.up_proj.weight": w(inter, HIDDEN),
        f"{prefix}mlp.down_proj.weight": w(HIDDEN, inter),
        f"{prefix}post_attention_layernorm.weight": torch.ones(HIDDEN),
    }


def build_target(path: Path, *, seed: int = 0) -> Path:
    """A random 2-layer Llama with tokenizer and safetensors weights."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path.mkdir(parents=True, exist_ok=True)
    write_tokenizer(path)
    torch.manual_seed(seed)
    config = dict(target_config())
    config.pop("architectures")
    config.pop("model_type")
    LlamaForCausalLM(LlamaConfig(**config)).save_pretrained(path, safe_serialization=True)
    return path


def build_mtp_target(path: Path, *, seed: int = 0) -> Path:
    """A random MiMo-style target (Qwen2 layers + one MTP layer under model.mtp_layers.0)."""
    import torch
    from safetensors.torch import save_file
    from transformers import Qwen2Config, Qwen2ForCausalLM

    path.mkdir(parents=True, exist_ok=True)
    write_tokenizer(path)
    torch.manual_seed(seed)
    shape = {k: v for k, v in target_config().items() if k not in ("architectures", "model_type")}
    weights = {
        k: v.contiguous() for k, v in Qwen2ForCausalLM(Qwen2Config(**shape)).state_dict().items()
    }
    layer = Qwen2ForCausalLM(Qwen2Config(**{**shape, "num_hidden_layers": 1})).state_dict()
    for name, value in layer.items():
        if name.startswith("model.layers.0."):
            weights["model.mtp_layers.0." + name.removeprefix("model.layers.0.")] = value.clone()
    for norm in ("token_layernorm", "hidden_layernorm", "final_layernorm"):
        weights[f"model.mtp_layers.0.{norm}.weight"] = torch.ones(HIDDEN)
    weights["model.mtp_layers.0.input_proj.weight"] = torch.randn(HIDDEN, 2 * HIDDEN) * 0.05
    save_file(weights, str(path / "model.safetensors"), metadata={"format": "pt"})
    config = Qwen2Config(**shape).to_dict()
    config.update(architectures=["MiMoForCausalLM"], num_nextn_predict_layers=1)
    (path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return path


def build_eagle_head(path: Path, *, seed: int = 1) -> Path:
    """A random EAGLE-1 head: fc over [embedding, hidden state] and one decoder layer without
    its input norm; the target's lm_head is shared (vLLM 0.32's ``llama_eagle.py``)."""
    import torch
    from safetensors.torch import save_file

    weights = _decoder_layer("layers.0.", HIDDEN, seed)
    g = torch.Generator().manual_seed(seed + 100)
    weights["fc.weight"] = torch.randn(HIDDEN, 2 * HIDDEN, generator=g) * 0.05
    weights["embed_tokens.weight"] = torch.randn(VOCAB, HIDDEN, generator=g) * 0.05
    write_config(path, **eagle_config())
    save_file(weights, str(path / "model.safetensors"), metadata={"format": "pt"})
    return path


def build_eagle3_head(
    path: Path, *, always_propose: int | None = None, draft_vocab: int = VOCAB // 2, seed: int = 2
) -> Path:
    """A random EAGLE-3 head with a reduced draft vocabulary and its ``d2t`` mapping.

    With ``always_propose`` the head's output norm is zero, so every draft logit is 0, and
    ``d2t`` maps every draft id to that target token; vLLM fills the other target ids with
    -inf, so the head always proposes it: proposals known in advance, so the test knows some
    must be accepted.
    """
    import torch
    from safetensors.torch import save_file

    weights = _decoder_layer("midlayer.", 2 * HIDDEN, seed)
    g = torch.Generator().manual_seed(seed + 100)
    weights["midlayer.input_layernorm.weight"] = torch.ones(HIDDEN)
    weights["midlayer.hidden_norm.weight"] = torch.ones(HIDDEN)
    weights["norm.weight"] = (
        torch.zeros(HIDDEN) if always_propose is not None else torch.ones(HIDDEN)
    )
    weights["fc.weight"] = torch.randn(HIDDEN, 3 * HIDDEN, generator=g) * 0.05
    weights["lm_head.weight"] = torch.randn(draft_vocab, HIDDEN, generator=g) * 0.05
    offsets = torch.zeros(draft_vocab, dtype=torch.long)  # target id = draft id + d2t[draft id]
    if always_propose is not None:  # every draft id maps to that token
        offsets = always_propose - torch.arange(draft_vocab, dtype=torch.long)
    weights["d2t"] = offsets
    write_config(path, **eagle3_config(draft_vocab_size=draft_vocab))
    save_file(weights, str(path / "model.safetensors"), metadata={"format": "pt"})
    return path
