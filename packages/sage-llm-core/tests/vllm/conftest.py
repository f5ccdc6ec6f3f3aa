"""Fixtures of the vLLM tests: tiny models built here, offline hub, CPU engine arguments."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

# Set before vLLM is imported anywhere: never reach for a hub, keep torch threads polite.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

HAS_VLLM = importlib.util.find_spec("vllm") is not None
HAS_TORCH = importlib.util.find_spec("torch") is not None and (
    importlib.util.find_spec("transformers") is not None
)

CPU_ENGINE_ARGS = {
    "max_model_len": 256,
    "enforce_eager": True,
    "dtype": "float32",
    # An explicit KV-cache size: vLLM's CPU default reserves 92% of RAM and refuses to start
    # on a shared machine.
    "kv_cache_memory_bytes": 64 * 1024 * 1024,
}
"""Engine arguments that start vLLM's CPU backend quickly on a tiny model."""

BUILTIN_STRATEGY_MODULES = (
    "sage_llm_strategy_ngram",
    "sage_llm_strategy_draft",
    "sage_llm_strategy_dynamic",
)
HAS_BUILTINS = all(importlib.util.find_spec(m) is not None for m in BUILTIN_STRATEGY_MODULES)

needs_vllm = pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not installed (nox -s vllm)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """These tests exercise the built-in strategies; a venv without them skips, not fails."""
    if HAS_BUILTINS:
        return
    skip = pytest.mark.skip(reason="needs the built-in strategy distributions (nox -s vllm)")
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The target: a random 2-layer Llama, vocabulary 512."""
    if not HAS_TORCH:
        pytest.skip("torch and transformers are needed to build the tiny model")
    from tiny_models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("target"), seed=0)


@pytest.fixture(scope="session")
def tiny_draft(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A draft of the same vocabulary but other weights, so some drafts get rejected."""
    if not HAS_TORCH:
        pytest.skip("torch and transformers are needed to build the tiny model")
    from tiny_models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("draft"), seed=1, layers=1)


@pytest.fixture(scope="session")
def other_vocab_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory whose vocabulary (1024) differs from the target's (512)."""
    from tiny_models import write_config_only

    return write_config_only(tmp_path_factory.mktemp("other_vocab"), vocab_size=1024)
