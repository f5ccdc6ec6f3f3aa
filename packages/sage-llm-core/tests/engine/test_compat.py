"""The version bridge (engines/transformers/compat.py) behaves the same on every transformers.

CI runs these on the lowest and the newest transformers the core allows (nox -s
engine_transformers); on 4.x, ``cache.crop(0)`` empties a cache, which once broke losslessness.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from sage.llm.engines.transformers import compat
from sage.llm.engines.transformers.errors import EngineError
from sage.llm.testing.tiny import tiny_llama


@pytest.fixture(scope="module")
def model() -> Any:
    return tiny_llama(64, seed=0)


def test_forward_fills_the_cache_and_keeps_the_asked_rows(model: Any) -> None:
    cache = compat.new_cache(model)
    with torch.inference_mode():
        logits = compat.forward(model, [3, 4, 5, 6], cache, logits_to_keep=2)
    assert tuple(logits.shape) == (2, 64)
    assert cache.get_seq_length() == 4


def test_dropping_nothing_keeps_the_cache(model: Any) -> None:
    cache = compat.new_cache(model)
    with torch.inference_mode():
        compat.forward(model, [3, 4, 5, 6, 7], cache, logits_to_keep=1)
        compat.drop_last_tokens(cache, 0)
        assert cache.get_seq_length() == 5
        compat.drop_last_tokens(cache, 2)
        assert cache.get_seq_length() == 3
    with pytest.raises(ValueError, match="negative"):
        compat.drop_last_tokens(cache, -1)


def test_cropped_cache_gives_the_logits_of_a_fresh_pass(model: Any) -> None:
    with torch.inference_mode():
        cache = compat.new_cache(model)
        compat.forward(model, [3, 4, 5, 9, 9], cache, logits_to_keep=1)
        compat.drop_last_tokens(cache, 2)
        after_crop = compat.forward(model, [6], cache, logits_to_keep=1)
        fresh = compat.forward(model, [3, 4, 5, 6], compat.new_cache(model), logits_to_keep=1)
    torch.testing.assert_close(after_crop, fresh, rtol=1e-5, atol=1e-5)


def test_no_sliding_window_means_no_rollback_limit(model: Any) -> None:
    assert compat.sliding_window(model) is None
    compat.check_rollback(model, compat.new_cache(model), 10_000)


def test_rollback_limit_of_a_sliding_window_model_without_past_recording() -> None:
    from transformers import MistralConfig, MistralForCausalLM

    config = MistralConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        sliding_window=16,
    )
    model = MistralForCausalLM(config).eval()
    assert compat.sliding_window(model) == 16

    class OldCache:  # what transformers 4.x offers: no activate_past_recording
        pass

    compat.check_rollback(model, OldCache(), 16)
    with pytest.raises(EngineError, match="sliding-window KV cache"):
        compat.check_rollback(model, OldCache(), 17)


def test_rope_settings_written_by_transformers_5_load_on_every_version(tmp_path: Any) -> None:
    """A config.json in 5.x form (``rope_parameters``) must give the same model on 4.x, which
    otherwise falls back to its default theta silently (a real model pack did)."""
    import json

    from sage.llm.engines.transformers import load_model
    from sage.llm.testing.tiny import save_tiny_model

    directory = save_tiny_model(tmp_path / "m", 64, seed=0, with_tokenizer=False)
    path = directory / "config.json"
    config = json.loads(path.read_text())
    config.pop("rope_theta", None)
    config.pop("rope_scaling", None)
    config["rope_parameters"] = {"rope_theta": 500000.0, "rope_type": "default"}
    path.write_text(json.dumps(config))

    model, _ = load_model(str(directory), device="cpu", require_tokenizer=False)
    head_dim = model.config.hidden_size // model.config.num_attention_heads
    expected = 1.0 / (500000.0 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    torch.testing.assert_close(model.model.rotary_emb.inv_freq.float(), expected)
