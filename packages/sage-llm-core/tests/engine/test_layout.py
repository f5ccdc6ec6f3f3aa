"""The CPU weight layout changes how weights are stored, never what the model computes."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch

from sage.llm.engines.transformers import load_model
from sage.llm.engines.transformers.layout import (
    is_column_major,
    use_column_major_weights,
    wants_column_major,
)
from sage.llm.testing.tiny import tiny_llama


def linear_weights(model: Any) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]


def test_every_linear_weight_becomes_column_major_with_the_same_values() -> None:
    model = tiny_llama(128, seed=0, device="cpu")
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    assert not any(is_column_major(w) for w in linear_weights(model))

    changed = use_column_major_weights(model)

    assert changed == len({id(w) for w in linear_weights(model)}) > 0
    assert all(is_column_major(w) for w in linear_weights(model))
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]), name
    assert use_column_major_weights(model) == 0, "a second call has nothing left to change"


def test_logits_agree_with_the_row_major_model() -> None:
    row = tiny_llama(128, seed=0, device="cpu")
    column = copy.deepcopy(row)
    use_column_major_weights(column)
    ids = torch.tensor([[3, 17, 5, 99, 42, 7, 7, 7]])
    with torch.inference_mode():
        torch.testing.assert_close(column(ids).logits, row(ids).logits, rtol=1e-5, atol=1e-5)


def test_tied_embedding_stays_tied_and_costs_no_memory() -> None:
    model = tiny_llama(128, seed=0, device="cpu")
    model.lm_head.weight = model.model.embed_tokens.weight  # tie them, as Qwen2.5-0.5B does
    params_before = sum(p.numel() for p in model.parameters())

    use_column_major_weights(model)

    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert is_column_major(model.model.embed_tokens.weight)
    assert sum(p.numel() for p in model.parameters()) == params_before
    with torch.inference_mode():  # the embedding still reads the right rows
        out = model.model.embed_tokens(torch.tensor([[4, 9]]))
    torch.testing.assert_close(out[0], model.lm_head.weight[[4, 9]])


def test_auto_means_fp32_on_the_cpu_only() -> None:
    model = tiny_llama(64, seed=0, device="cpu")
    assert wants_column_major(model, "auto")
    assert wants_column_major(model, "column")
    assert not wants_column_major(model, "row")
    assert not wants_column_major(model.to(torch.bfloat16), "auto")


def test_non_fp32_weights_are_left_alone() -> None:
    model = tiny_llama(64, seed=0, device="cpu").to(torch.bfloat16)
    assert use_column_major_weights(model) == 0


def test_unknown_layout_is_a_clear_error() -> None:
    model = tiny_llama(64, seed=0, device="cpu")
    with pytest.raises(ValueError, match="weight layout must be one of auto, column, row"):
        wants_column_major(model, "diagonal")  # type: ignore[arg-type]


def test_load_model_uses_column_major_on_cpu_unless_asked_not_to(model_dir: Path) -> None:
    model, _ = load_model(str(model_dir), device="cpu")
    assert all(is_column_major(w) for w in linear_weights(model))
    model, _ = load_model(str(model_dir), device="cpu", weight_layout="row")
    assert not any(is_column_major(w) for w in linear_weights(model))
