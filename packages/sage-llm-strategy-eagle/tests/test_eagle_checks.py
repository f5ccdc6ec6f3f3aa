"""The checks against the target that run before vLLM starts (the core's precheck of
``speculative_config``, :mod:`sage.llm.engines.vllm.heads`), on config-only folders."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from heads_testutils import (
    HIDDEN,
    VOCAB,
    eagle3_config,
    eagle_config,
    speculators_eagle3_config,
    target_config,
    write_config,
)

from sage.llm import get_strategy
from sage.llm.engines.vllm.config import build_engine_args
from sage.llm.engines.vllm.validation import precheck_engine_args
from sage.llm.errors import EngineConfigError


def _check(target: Path | str, strategy: str, **engine: object) -> dict:
    args = build_engine_args(get_strategy(strategy), {"model": str(target), **engine})
    precheck_engine_args(args, strategy=strategy.split(":", 1)[0])
    return args


def _safetensors_header(path: Path, names: list[str]) -> None:
    """A weights file whose header names ``names`` (the check reads only the header)."""
    header = {n: {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]} for n in names}
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + b"\0" * 8)


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return write_config(tmp_path / "target", **target_config())


def test_matching_heads_pass(tmp_path: Path, target: Path) -> None:
    eagle = write_config(tmp_path / "e1", **eagle_config())
    eagle3 = write_config(tmp_path / "e3", **eagle3_config())
    args = _check(target, f"eagle:model={eagle}")
    assert args["speculative_config"]["model"] == str(eagle)
    _check(target, f"eagle3:model={eagle3}")


def test_eagle_head_of_another_hidden_size_is_refused(tmp_path: Path, target: Path) -> None:
    head = write_config(tmp_path / "head", **eagle_config(hidden_size=2 * HIDDEN))
    with pytest.raises(
        EngineConfigError,
        match=rf"eagle: the head .* hidden size {2 * HIDDEN} \(hidden_size .*target's hidden "
        rf"size is {HIDDEN}",
    ):
        _check(target, f"eagle:model={head}")


def test_eagle3_target_hidden_size_is_what_counts(tmp_path: Path, target: Path) -> None:
    """An EAGLE-3 head may be wider than its target; target_hidden_size must match."""
    wide = write_config(tmp_path / "wide", **eagle3_config(hidden_size=2 * HIDDEN))
    _check(target, f"eagle3:model={wide}")
    other = write_config(tmp_path / "other", **eagle3_config(target_hidden_size=2 * HIDDEN))
    with pytest.raises(EngineConfigError, match=r"target_hidden_size"):
        _check(target, f"eagle3:model={other}")


def test_head_of_another_vocabulary_is_refused(tmp_path: Path, target: Path) -> None:
    head = write_config(tmp_path / "head", **eagle_config(vocab_size=2 * VOCAB))
    with pytest.raises(EngineConfigError, match=rf"vocabulary of {2 * VOCAB} .* has {VOCAB}"):
        _check(target, f"eagle:model={head}")


def test_draft_vocabulary_larger_than_the_target_is_refused(tmp_path: Path, target: Path) -> None:
    head = write_config(tmp_path / "head", **eagle3_config(draft_vocab_size=VOCAB + 1))
    with pytest.raises(EngineConfigError, match=r"draft_vocab_size 513, larger"):
        _check(target, f"eagle3:model={head}")


def test_reduced_draft_vocabulary_needs_d2t(tmp_path: Path, target: Path) -> None:
    head = write_config(tmp_path / "head", **speculators_eagle3_config())
    _safetensors_header(head / "model.safetensors", ["fc.weight", "lm_head.weight"])
    with pytest.raises(EngineConfigError, match=r"no 'd2t' tensor"):
        _check(target, f"eagle3:model={head}")
    _safetensors_header(head / "model.safetensors", ["fc.weight", "d2t", "t2d"])
    _check(target, f"eagle3:model={head}")


@pytest.mark.parametrize("ids", [[0, 1, 3], [1, 1, 2], [-1, 0, 1]])
def test_eagle3_layers_beyond_the_target_are_refused(
    tmp_path: Path, target: Path, ids: list[int]
) -> None:
    head = write_config(tmp_path / "head", **eagle3_config(eagle_aux_hidden_state_layer_ids=ids))
    with pytest.raises(EngineConfigError, match=r"reads target layers .* has 2 layers"):
        _check(target, f"eagle3:model={head}")


def test_hub_ids_are_passed_through(target: Path) -> None:
    """No network here: a hub id is vLLM's to fetch and check."""
    args = _check(target, "eagle3:model=yuhuili/EAGLE3-LLaMA3.1-Instruct-8B")
    assert args["speculative_config"]["model"] == "yuhuili/EAGLE3-LLaMA3.1-Instruct-8B"


def test_mtp_on_a_target_without_mtp_layers_names_its_model_type(target: Path) -> None:
    with pytest.raises(EngineConfigError, match=r"model_type 'llama'\) declares no MTP layers"):
        _check(target, "mtp")


@pytest.mark.parametrize(
    ("extra", "ok"),
    [
        ({"num_nextn_predict_layers": 1}, True),  # DeepSeek-V3, MiMo, GLM-4.5
        ({"text_config": {"mtp_num_hidden_layers": 1, "hidden_size": HIDDEN}}, True),  # Qwen3.5
        ({"num_nextn_predict_layers": 0}, False),
    ],
)
def test_mtp_reads_the_layer_count(tmp_path: Path, extra: dict, ok: bool) -> None:
    target = write_config(tmp_path / "target", **target_config(model_type="deepseek_v3", **extra))
    if ok:
        _check(target, "mtp")
    else:
        with pytest.raises(EngineConfigError, match=r"declares 0 MTP layers"):
            _check(target, "mtp")


def test_mtp_path_that_vllm_would_read_as_eagle_is_refused(tmp_path: Path) -> None:
    target = write_config(
        tmp_path / "my-eagle-runs" / "target", **target_config(num_nextn_predict_layers=1)
    )
    with pytest.raises(EngineConfigError, match=r"contains 'eagle-'.*ignores method='mtp'"):
        _check(target, "mtp")


def test_draft_tensor_parallel_size_is_checked_for_heads(tmp_path: Path, target: Path) -> None:
    head = write_config(tmp_path / "head", **eagle_config())
    with pytest.raises(EngineConfigError, match=r"draft_tensor_parallel_size=2 must be 1"):
        _check(target, f"eagle:model={head},draft_tensor_parallel_size=2")
