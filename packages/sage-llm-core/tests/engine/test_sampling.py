"""Sampling parameters: validation and the logits -> probabilities transform."""

from __future__ import annotations

import math

import pytest
import torch

from sage.llm.engines.transformers.errors import InvalidSamplingParamsError
from sage.llm.engines.transformers.sampling import SamplingParams, probabilities


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": -0.1}, "temperature must be a finite number >= 0"),
        ({"temperature": math.nan}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_k": 0}, "top_k must be an integer >= 1"),
        ({"top_k": 2.5}, "top_k"),
        ({"top_p": 0.0}, r"top_p must be a number in \(0, 1\]"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_p": True}, "top_p"),
    ],
)
def test_invalid_parameters_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidSamplingParamsError, match=message):
        SamplingParams(**kwargs)


def test_invalid_parameters_are_value_errors() -> None:
    with pytest.raises(ValueError, match="temperature"):
        SamplingParams(temperature=-1)


def test_temperature_scales_logits() -> None:
    logits = torch.tensor([1.0, 2.0, 3.0])
    got = probabilities(logits, SamplingParams(temperature=0.5))
    assert torch.allclose(got, torch.softmax(logits / 0.5, dim=-1))


def test_top_k_keeps_k_tokens() -> None:
    logits = torch.tensor([[1.0, 4.0, 3.0, 2.0]])
    got = probabilities(logits, SamplingParams(temperature=1.0, top_k=2))
    expected = torch.softmax(torch.tensor([4.0, 3.0]), dim=-1)
    assert torch.allclose(got[0, [1, 2]], expected)
    assert got[0, [0, 3]].tolist() == [0.0, 0.0]


def test_top_p_keeps_the_smallest_nucleus() -> None:
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    got = probabilities(probs.log(), SamplingParams(temperature=1.0, top_p=0.8))
    # 0.5 alone < 0.8; 0.5 + 0.3 reaches 0.8: keep exactly the first two.
    assert torch.allclose(got, torch.tensor([0.625, 0.375, 0.0, 0.0]))
    one = probabilities(probs.log(), SamplingParams(temperature=1.0, top_p=0.1))
    assert one.tolist() == [1.0, 0.0, 0.0, 0.0]


def test_greedy_flag() -> None:
    assert SamplingParams().greedy
    assert not SamplingParams(temperature=0.7).greedy
