"""EAGLE, EAGLE-3 and MTP on a real vLLM (the CPU build runs all three in 0.32): vLLM accepts
the configurations for a tiny target and head, and greedy output equals plain greedy.

Run in the `vllm` nox session (``-k vllm``); skipped where vLLM is not installed.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pytest
from heads_testutils import (
    build_eagle3_head,
    build_eagle_head,
    build_mtp_target,
    build_target,
)

pytest.importorskip("vllm", reason="vLLM not installed: checked in the `vllm` nox session")
pytest.importorskip("safetensors")

pytestmark = [pytest.mark.vllm]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

CPU_ARGS: dict[str, Any] = {
    "max_model_len": 256,
    "enforce_eager": True,
    "dtype": "float32",
    "kv_cache_memory_bytes": 64 * 1024 * 1024,
}
PROMPT = [1, 5, 6, 7, 8, 9, 10, 11]
MAX_TOKENS = 24


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    # No "eagle-" in these paths: vLLM 0.32 infers a method from the draft's path.
    root = tmp_path_factory.mktemp("heads")
    return {
        "target": build_target(root / "target"),
        "eagle": build_eagle_head(root / "head1"),
        "eagle3": build_eagle3_head(root / "head3"),
        "mtp_target": build_mtp_target(root / "mimo"),
    }


def _config(models: dict[str, Path], strategy: str) -> tuple[Path, str]:
    if strategy == "mtp":
        return models["mtp_target"], "mtp"
    return models["target"], f"{strategy}:model={models[strategy]}"


@pytest.mark.parametrize("strategy", ["eagle", "eagle3", "mtp"])
def test_vllm_engine_config_accepts_the_strategy(models: dict[str, Path], strategy: str) -> None:
    from vllm.engine.arg_utils import EngineArgs

    from sage.llm import get_strategy
    from sage.llm.engines.vllm.config import build_engine_args
    from sage.llm.engines.vllm.validation import precheck_engine_args

    target, spec = _config(models, strategy)
    args = build_engine_args(get_strategy(spec), {"model": str(target), **CPU_ARGS})
    precheck_engine_args(args, strategy=strategy)
    config = EngineArgs(**args).create_engine_config()
    assert config.speculative_config is not None
    assert config.speculative_config.method == strategy


def _generate(target: Path, spec: str | None) -> tuple[list[int], Any]:
    from sage.llm.engines.vllm import VLLMService, VLLMServiceConfig

    config = VLLMServiceConfig(
        model_id=str(target), speculative_strategy=spec, engine_args=dict(CPU_ARGS)
    )
    with VLLMService(config) as service:
        result = service.generate([PROMPT], max_tokens=MAX_TOKENS, temperature=0.0, ignore_eos=True)
    return list(result.token_ids), result.metrics


@pytest.fixture(scope="module")
def baselines(models: dict[str, Path]) -> dict[str, list[int]]:
    return {
        "target": _generate(models["target"], None)[0],
        "mtp_target": _generate(models["mtp_target"], None)[0],
    }


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["eagle", "eagle3", "mtp"])
def test_vllm_greedy_output_equals_plain_greedy(
    models: dict[str, Path], baselines: dict[str, list[int]], strategy: str
) -> None:
    target, spec = _config(models, strategy)
    tokens, metrics = _generate(target, spec)
    assert tokens == baselines["mtp_target" if strategy == "mtp" else "target"]
    assert metrics.num_draft_tokens > 0, metrics


@pytest.mark.slow
def test_vllm_accepts_known_eagle3_proposals(
    models: dict[str, Path], baselines: dict[str, list[int]], tmp_path: Path
) -> None:
    """A head that always proposes one token: where the target repeats it, drafts are
    accepted, and the output is still the target's own."""
    plain = baselines["target"]
    repeated = [a for a, b in itertools.pairwise(plain) if a == b]
    if not repeated:
        pytest.skip("the tiny target's greedy output repeats no token back to back")
    head = build_eagle3_head(tmp_path / "always", always_propose=repeated[0])
    tokens, metrics = _generate(models["target"], f"eagle3:model={head}")
    assert tokens == plain
    assert metrics.num_accepted_tokens > 0, metrics
