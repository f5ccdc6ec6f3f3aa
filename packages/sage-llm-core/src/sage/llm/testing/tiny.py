"""Tiny random causal LMs and a character tokenizer for tests, built in-process.

Tests of engines and proposers need real forward passes but no downloads: a seeded two-layer
Llama with a vocabulary of a few hundred tokens runs thousands of steps per second on a CPU.
Used by sage-llm's own tests and by :class:`sage.llm.testing.ProposerConformanceTests`.
Needs torch and transformers (``pip install 'sage-llm-core[transformers]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHARS = list(" abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?:;'-\n")
"""Character vocabulary of the test tokenizer (plus <unk>, <s>, </s>)."""


def tiny_device() -> str:
    """Where tests put tiny models: ``SAGE_LLM_TEST_DEVICE`` (e.g. ``cuda``), default CPU."""
    import os

    return os.environ.get("SAGE_LLM_TEST_DEVICE", "cpu")


def tiny_llama(
    vocab_size: int = 128,
    seed: int = 0,
    layers: int = 2,
    hidden: int = 64,
    device: str | None = None,
) -> Any:
    """A seeded random Llama small enough to run thousands of steps in a second or two.

    Weights are drawn on the CPU (the same model on every device), then moved to ``device``
    (default :func:`tiny_device`), in float32 so that greedy comparisons are exact.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
        initializer_range=0.2,  # peaked logits: far from argmax ties between batch shapes
    )
    model: Any = LlamaForCausalLM(config)
    model = model.eval().to(device or tiny_device())
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = None
    return model


def char_tokenizer() -> Any:
    """A character-level fast tokenizer with a chat template, saved like a real one."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for c in CHARS:
        vocab[c] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    backend.decoder = decoders.Fuse()
    make_tokenizer: Any = PreTrainedTokenizerFast  # untyped constructor
    tokenizer = make_tokenizer(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    return tokenizer


def save_byte_tokenizer(path: Path, vocab_size: int) -> None:
    """Save a byte-level word tokenizer of ``vocab_size`` entries into ``path``: any text
    round-trips (one token per byte), which vLLM's tests need where the character tokenizer
    would map unknown characters to <unk>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

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
    make_tokenizer: Any = PreTrainedTokenizerFast  # untyped constructor
    make_tokenizer(
        tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    ).save_pretrained(path)


def save_tiny_model(
    directory: Path, vocab_size: int, seed: int, with_tokenizer: bool = True
) -> Path:
    """Save a tiny model (and the character tokenizer) as a normal model directory."""
    model = tiny_llama(vocab_size, seed=seed, device="cpu")
    if with_tokenizer:
        tokenizer = char_tokenizer()
        model.config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        tokenizer.save_pretrained(directory)
    model.save_pretrained(directory)
    return directory


def noisy_copy(model: Any, scale: float, seed: int) -> Any:
    """``model`` with seeded Gaussian noise of ``scale`` on every weight: a draft that agrees
    with it often but not always (0.05), or one that is often wrong (0.3)."""
    import copy

    import torch

    noisy = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in noisy.parameters():
            p.add_(torch.randn(p.shape, generator=g).to(p.device) * scale)
    return noisy


def repetitive_prompt(length: int = 24, seed: int = 0, vocab_size: int = 128) -> list[int]:
    """Random tokens repeated twice: gives the n-gram proposer something to find."""
    import torch

    g = torch.Generator().manual_seed(seed)
    part: list[int] = torch.randint(3, vocab_size, (length,), generator=g).tolist()
    return part + part[: length // 2]


def reference_greedy(model: Any, prompt: list[int], max_new: int) -> list[int]:
    """transformers' own greedy decoding: the ground truth for losslessness."""
    import torch

    out = model.generate(
        torch.tensor([prompt], device=model.device),
        max_new_tokens=max_new,
        do_sample=False,
        min_new_tokens=0,
    )
    return list(out[0, len(prompt) :].tolist())
