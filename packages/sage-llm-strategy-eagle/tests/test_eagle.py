"""The eagle, eagle3 and mtp strategies: conformance, exact vLLM arguments, the head checks
that need no target, and the refusal on the reference engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from heads_testutils import eagle3_config, eagle_config, speculators_eagle3_config, write_config

from sage.llm import InvalidParameterError, get_strategy
from sage.llm.testing import StrategyConformanceTests
from sage_llm_strategy_eagle import Eagle3Strategy, EagleStrategy, MTPStrategy

_BAD_COMMON = [
    {"num_speculative_tokens": 0},
    {"num_speculative_tokens": "many"},
    {"draft_tensor_parallel_size": 0},
    {"max_model_len": -1},
    {"model": ""},
    {"model": "/no/such/head"},
]


class TestEagleConformance(StrategyConformanceTests):
    strategy_name = "eagle"
    valid_params = {"model": "yuhuili/EAGLE-LLaMA3-Instruct-8B", "num_speculative_tokens": 2}
    invalid_params = _BAD_COMMON


class TestEagle3Conformance(StrategyConformanceTests):
    strategy_name = "eagle3"
    valid_params = {"model": "yuhuili/EAGLE3-LLaMA3.1-Instruct-8B", "num_speculative_tokens": 4}
    invalid_params = _BAD_COMMON


class TestMTPConformance(StrategyConformanceTests):
    strategy_name = "mtp"
    valid_params = {"num_speculative_tokens": 1}
    invalid_params = _BAD_COMMON


@pytest.mark.parametrize(("name", "method"), [("eagle", "eagle"), ("eagle3", "eagle3")])
def test_apply_writes_exactly_the_head_config(name: str, method: str) -> None:
    config: dict = {"model": "target"}
    get_strategy(name, model="org/head", num_speculative_tokens=4).apply(config)
    assert config == {
        "model": "target",
        "speculative_config": {"method": method, "model": "org/head", "num_speculative_tokens": 4},
    }


def test_mtp_without_model_drafts_from_the_target() -> None:
    config: dict = {}
    MTPStrategy().apply(config)
    assert config == {"speculative_config": {"method": "mtp", "num_speculative_tokens": 1}}


def test_optional_fields_are_written_when_set() -> None:
    config: dict = {}
    Eagle3Strategy(
        model="org/head",
        num_speculative_tokens=2,
        draft_tensor_parallel_size=1,
        quantization="fp8",
        revision="main",
        max_model_len=2048,
        disable_padded_drafter_batch=True,
    ).apply(config)
    assert config["speculative_config"] == {
        "method": "eagle3",
        "model": "org/head",
        "num_speculative_tokens": 2,
        "draft_tensor_parallel_size": 1,
        "quantization": "fp8",
        "revision": "main",
        "max_model_len": 2048,
        "disable_padded_drafter_batch": True,
    }


@pytest.mark.parametrize("name", ["eagle", "eagle3"])
def test_head_is_required(name: str) -> None:
    with pytest.raises(InvalidParameterError, match=r"missing required parameter.*model"):
        get_strategy(name)


def test_string_form_parses() -> None:
    strategy = get_strategy("eagle3:model=org/head,num_speculative_tokens=5")
    assert isinstance(strategy, Eagle3Strategy)
    assert (strategy.model, strategy.num_speculative_tokens) == ("org/head", 5)


def test_missing_local_head_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "head"
    with pytest.raises(InvalidParameterError, match=r"eagle: parameter 'model'.*not a directory"):
        EagleStrategy(model=str(missing))


def test_head_folder_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match=r"parameter 'model'.*has no config\.json"):
        Eagle3Strategy(model=str(tmp_path))


@pytest.mark.parametrize("config", [eagle3_config(), speculators_eagle3_config()])
def test_eagle3_head_under_eagle_is_refused(tmp_path: Path, config: dict) -> None:
    head = write_config(tmp_path / "head", **config)
    with pytest.raises(InvalidParameterError, match=r"is an EAGLE-3 head.*use the eagle3 strategy"):
        EagleStrategy(model=str(head))
    assert Eagle3Strategy(model=str(head)).model == str(head)


def test_explicit_eagle1_head_under_eagle3_is_refused(tmp_path: Path) -> None:
    head = write_config(tmp_path / "head", **eagle_config(architectures=["EagleLlamaForCausalLM"]))
    with pytest.raises(InvalidParameterError, match=r"is not an EAGLE-3 head"):
        Eagle3Strategy(model=str(head))


def test_unmarked_llama_head_is_accepted_by_both(tmp_path: Path) -> None:
    """yuhuili's EAGLE-1 heads say LlamaForCausalLM: nothing tells the generation apart."""
    head = write_config(tmp_path / "head", **eagle_config())
    assert EagleStrategy(model=str(head)).model == Eagle3Strategy(model=str(head)).model


@pytest.mark.parametrize("name", ["eagle", "eagle3", "mtp"])
def test_reference_engine_is_refused_with_the_reason(name: str) -> None:
    from sage.llm.engines.transformers.engine import require_proposer

    strategy = get_strategy(name, **({} if name == "mtp" else {"model": "org/head"}))
    with pytest.raises(NotImplementedError, match=rf"^{name} runs on vLLM only: .*hidden states"):
        require_proposer(strategy)  # what generate and the control plane ask before loading


def test_generate_on_the_reference_engine_fails_with_the_reason(tmp_path: Path) -> None:
    pytest.importorskip("transformers", reason="the reference engine needs transformers")
    from click.testing import CliRunner

    from sage.llm.cli.main import cli
    from sage.llm.testing.tiny import save_tiny_model

    target = save_tiny_model(tmp_path / "target", vocab_size=128, seed=0)
    head = write_config(tmp_path / "head", **eagle_config())
    result = CliRunner().invoke(
        cli,
        ["generate", "hi", "--model", str(target), "--strategy", f"eagle:model={head}"],
    )
    assert result.exit_code != 0
    assert "eagle runs on vLLM only" in result.output
    assert "--engine vllm" in result.output
