"""Text-level behaviour: stop strings, streaming, chat templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from sage.llm.engines.transformers import TransformersEngine


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> TransformersEngine:
    return TransformersEngine.from_pretrained(str(model_dir), device="cpu")


def test_stop_string_cuts_the_text_and_the_stream(engine: TransformersEngine) -> None:
    free = engine.generate("hello world", max_tokens=30, chat=False)
    assert len(free.text) >= 8
    stop = free.text[4:6]
    expected = free.text[: free.text.index(stop)]
    pieces: list[str] = []
    for strategy in (None, "ngram:n=2,num_speculative_tokens=4"):
        pieces.clear()
        result = engine.generate(
            "hello world",
            max_tokens=30,
            chat=False,
            stop=[stop, "@@never@@"],
            strategy=strategy,
            on_text=pieces.append,
        )
        assert result.text == expected
        assert result.finish_reason == "stop"
        assert "".join(pieces) == expected


def test_streamed_pieces_add_up_to_the_text(engine: TransformersEngine) -> None:
    pieces: list[str] = []
    result = engine.generate("abc abc", max_tokens=20, chat=False, on_text=pieces.append)
    assert "".join(pieces) == result.text
    assert len(pieces) > 1


def test_chat_template_is_applied_by_default(engine: TransformersEngine) -> None:
    tokenizer = engine.tokenizer
    templated = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert engine.encode_prompt("hi") == tokenizer(templated, add_special_tokens=False)["input_ids"]
    assert engine.encode_prompt("hi", chat=False) == tokenizer("hi")["input_ids"]


def test_chat_without_a_template_is_refused(engine: TransformersEngine) -> None:
    saved = engine.tokenizer.chat_template
    engine.tokenizer.chat_template = None
    try:
        with pytest.raises(ValueError, match="no chat template"):
            engine.encode_prompt("hi", chat=True)
        assert engine.encode_prompt("hi") == engine.tokenizer("hi")["input_ids"]
    finally:
        engine.tokenizer.chat_template = saved


def test_eos_of_the_tokenizer_stops_generation(engine: TransformersEngine) -> None:
    assert engine.tokenizer.eos_token_id in engine.eos_token_ids
