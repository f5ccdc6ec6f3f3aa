"""Bad input gets a clear error that says what was wrong and what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sage.llm import get_strategy
from sage.llm.engines.transformers import TransformersEngine
from sage.llm.engines.transformers.errors import (
    InvalidSamplingParamsError,
    ModelLoadError,
    VocabularyMismatchError,
)
from sage.llm.engines.transformers.loading import resolve_source


def test_unknown_model_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelLoadError, match="not found") as info:
        TransformersEngine.from_pretrained(str(missing))
    assert str(missing) in str(info.value)
    assert isinstance(info.value, OSError)


def test_directory_that_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelLoadError, match="not a transformers model"):
        resolve_source(tmp_path)


def test_non_gguf_file(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\0")
    with pytest.raises(ModelLoadError, match=r"not a \.gguf file"):
        resolve_source(path)


def test_corrupt_model_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{ not json")
    with pytest.raises(ModelLoadError, match="could not load the model"):
        TransformersEngine.from_pretrained(str(tmp_path))


def test_unreachable_hub_fails_fast(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from huggingface_hub import constants

    from sage.llm.models import UnknownModelError

    # huggingface_hub reads its environment once, at import: patch its constants instead.
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # refused at once
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # an empty hub cache
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnknownModelError, match="unreachable") as info:
        TransformersEngine.from_pretrained("some-org/some-model")
    assert "some-org/some-model" in str(info.value)


def test_cuda_device_without_cuda_is_one_clear_error(model_dir: Path) -> None:
    import torch

    from sage.llm.engines.transformers.errors import DeviceUnavailableError

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(DeviceUnavailableError, match="device 'cuda' is not available"):
        TransformersEngine.from_pretrained(str(model_dir), device="cuda")
    with pytest.raises(DeviceUnavailableError, match="unknown device 'gpu'"):
        TransformersEngine.from_pretrained(str(model_dir), device="gpu")


def test_loads_a_saved_model(model_dir: Path) -> None:
    engine = TransformersEngine.from_pretrained(str(model_dir), device="cpu")
    result = engine.generate("abc", max_tokens=5, chat=False)
    assert len(result.token_ids) <= 5


def test_mismatched_draft_vocabulary(model_dir: Path, other_vocab_dir: Path) -> None:
    engine = TransformersEngine.from_pretrained(str(model_dir), device="cpu")
    strategy = get_strategy("draft", draft_model_id=str(other_vocab_dir))
    with pytest.raises(VocabularyMismatchError) as info:
        engine.generate("abc", strategy=strategy, max_tokens=4)
    message = str(info.value)
    assert str(other_vocab_dir) in message
    assert "96" in message
    assert "80" in message
    assert str(model_dir) in message


def test_same_vocabulary_draft_is_accepted(model_dir: Path, draft_dir: Path) -> None:
    engine = TransformersEngine.from_pretrained(str(model_dir), device="cpu")
    plain = engine.generate("hello hello hello", max_tokens=12, chat=False)
    spec = engine.generate(
        "hello hello hello",
        strategy=get_strategy("draft", draft_model_id=str(draft_dir), num_speculative_tokens=3),
        max_tokens=12,
        chat=False,
    )
    assert spec.token_ids == plain.token_ids
    assert spec.metrics.num_drafts > 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": -1.0}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_k": 0}, "top_k"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"seed": -3}, "seed"),
    ],
)
def test_invalid_sampling_parameters(target: Any, kwargs: dict, match: str) -> None:
    engine = TransformersEngine(target)
    with pytest.raises(InvalidSamplingParamsError, match=match):
        engine.generate([1, 2, 3], **kwargs)


def test_prompt_longer_than_the_context(target: Any) -> None:
    engine = TransformersEngine(target)
    with pytest.raises(InvalidSamplingParamsError, match="exceeds the model's context"):
        engine.generate([1] * 1000, max_tokens=100)


def test_text_prompt_without_tokenizer(target: Any) -> None:
    with pytest.raises(ValueError, match="no tokenizer"):
        TransformersEngine(target).generate("hello")


def test_vllm_only_strategy_is_refused(target: Any) -> None:
    from sage.llm import SpeculativeStrategy

    class VllmOnly(SpeculativeStrategy):
        name = "vllm-only"

        def apply(self, engine_config: dict) -> None:
            engine_config.setdefault("speculative_config", {})["method"] = "ngram"

    with pytest.raises(NotImplementedError, match="only configures vLLM"):
        TransformersEngine(target).generate([1, 2, 3], strategy=VllmOnly(), max_tokens=2)
