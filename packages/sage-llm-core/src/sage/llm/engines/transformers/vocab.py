"""What token ids mean to a model: its output vocabulary, its end-of-sequence ids, and whether a
second model (a draft) reads token ids the same way.

The engine and draft proposers must agree on these, so they are defined once here (and
offered to plugin authors through :mod:`sage.llm.proposing`).
"""

from __future__ import annotations

from typing import Any

from sage.llm.engines.transformers.errors import VocabularyMismatchError


def output_vocab_size(model: Any) -> int:
    """Rows of the model's output projection: the length of its logits (may exceed the
    tokenizer's vocabulary, as padded embedding tables do)."""
    return int(model.get_output_embeddings().weight.shape[0])


def eos_token_ids(model: Any, tokenizer: Any = None) -> frozenset[int]:
    """Every id that ends generation: the generation config's, the model config's and the
    tokenizer's (chat models often list several, e.g. ``<|im_end|>`` and ``<|endoftext|>``)."""
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), getattr(model, "config", None)):
        value = getattr(source, "eos_token_id", None) if source is not None else None
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    if tokenizer is not None and getattr(tokenizer, "eos_token_id", None) is not None:
        ids.add(int(tokenizer.eos_token_id))
    return frozenset(ids)


def check_same_vocabulary(
    target_name: str,
    target_vocab_size: int,
    target_tokenizer: Any,
    draft_name: str,
    draft_model: Any,
    draft_tokenizer: Any,
) -> None:
    """Refuse a draft whose token ids do not mean what the target's mean.

    Raises :class:`~sage.llm.engines.transformers.errors.VocabularyMismatchError` when the
    logits differ in length, or when both tokenizers are known and map ids to different text.
    """
    draft_size = output_vocab_size(draft_model)
    if draft_size != target_vocab_size:
        raise VocabularyMismatchError(
            f"draft model {draft_name!r} has a vocabulary of {draft_size} tokens but the target "
            f"{target_name!r} has {target_vocab_size}; a draft must share the target's "
            "tokenizer. Pick a smaller model of the same family (for example Qwen2.5-0.5B for "
            "a Qwen2.5 target), or use the ngram strategy."
        )
    if (
        target_tokenizer is not None
        and draft_tokenizer is not None
        and target_tokenizer.get_vocab() != draft_tokenizer.get_vocab()
    ):
        raise VocabularyMismatchError(
            f"draft model {draft_name!r} and target {target_name!r} have the same vocabulary "
            "size but different tokenizers (token ids map to different text). Pick a draft "
            "of the same model family, or use the ngram strategy."
        )
