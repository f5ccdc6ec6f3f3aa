"""Tiny random Llama checkpoints that vLLM's CPU backend can load, built in seconds.

CPU attention needs a head size of 32, 64, 80, ...: hidden 64 with 2 heads (head_dim 32) is the
smallest shape that works. The tokenizer is a byte-level word table, so any text round-trips
without downloading anything.
"""

from __future__ import annotations

import json
from pathlib import Path


def build_tiny_llama(path: Path, *, vocab_size: int = 512, seed: int = 0, layers: int = 2) -> Path:
    """Write config, weights (safetensors) and tokenizer of a random Llama into ``path``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    while len(vocab) < vocab_size:
        vocab[f"<extra_{len(vocab)}>"] = len(vocab)
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            pre_tokenizers.Split("", "isolated"),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    ).save_pretrained(path)
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
