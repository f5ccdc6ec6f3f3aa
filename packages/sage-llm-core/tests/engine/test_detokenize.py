"""Incremental detokenization: the streamed text equals a full decode, whatever the chunking.

A byte-level BPE (the kind Qwen, Llama 3 and GPT-2 use) splits multi-byte UTF-8 characters
across tokens and carries spaces inside tokens, which is what makes decoding one token at a
time wrong; it is trained here in-process on a few sentences (no download).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from sage.llm.engines.transformers.engine import _TextTracker

TEXT = (
    "def sum_prices(items):\n    return sum(i.price for i in items)  # 合计 ✓\n"
    "Grüße aus Köln — naïve café, 東京タワー 🚀🚀 and 中文 text. "
)


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    backend.train_from_iterator([TEXT] * 3, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend)


class Decoder:
    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.calls: list[int] = []

    def decode(self, ids: list[int]) -> str:
        self.calls.append(len(ids))
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))


@pytest.mark.parametrize("seed", range(5))
def test_stream_equals_full_decode_in_any_chunks(tokenizer: Any, seed: int) -> None:
    text = TEXT * 4
    ids = tokenizer(text)["input_ids"]
    assert any("\ufffd" in tokenizer.decode([t]) for t in ids), "some token is a partial char"
    rng = random.Random(seed)
    decoder = Decoder(tokenizer)
    pieces: list[str] = []
    tracker = _TextTracker(decoder, [], pieces.append)  # type: ignore[arg-type]
    generated: list[int] = []
    while len(generated) < len(ids):
        generated.extend(ids[len(generated) : len(generated) + rng.randint(1, 4)])
        tracker.update(generated)
        assert "\ufffd" not in "".join(pieces), "a partial character was streamed"
    assert tracker.finish(generated) == text
    assert "".join(pieces) == text
    # Each decode covers a short window (its length set by runs of characters split across
    # tokens, such as CJK here), not the whole output: linear work, not quadratic.
    assert max(decoder.calls) < len(ids) // 8
    assert sum(decoder.calls) < 16 * len(ids)


def test_stop_string_split_across_tokens(tokenizer: Any) -> None:
    ids = tokenizer(TEXT)["input_ids"]
    pieces: list[str] = []
    tracker = _TextTracker(Decoder(tokenizer), ["café"], pieces.append)  # type: ignore[arg-type]
    generated: list[int] = []
    for token in ids:
        generated.append(token)
        if tracker.update(generated):
            break
    expected = TEXT[: TEXT.index("café")]
    assert tracker.finish(generated) == expected
    assert "".join(pieces) == expected
