"""Fixtures of the vLLM tests: tiny models built here, offline hub, CPU engine arguments."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from vllm_testutils import HAS_TORCH

# Set before vLLM is imported anywhere: never reach for a hub, keep torch threads polite.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The target: a random 2-layer Llama, vocabulary 512."""
    if not HAS_TORCH:
        pytest.skip("torch and transformers are needed to build the tiny model")
    from vllm_testutils import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("target"), seed=0)


@pytest.fixture(scope="session")
def tiny_draft(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A draft of the same vocabulary but other weights, so some drafts get rejected."""
    if not HAS_TORCH:
        pytest.skip("torch and transformers are needed to build the tiny model")
    from vllm_testutils import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("draft"), seed=1, layers=1)


@pytest.fixture(scope="session")
def other_vocab_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory whose vocabulary (1024) differs from the target's (512)."""
    from vllm_testutils import write_config_only

    return write_config_only(tmp_path_factory.mktemp("other_vocab"), vocab_size=1024)
