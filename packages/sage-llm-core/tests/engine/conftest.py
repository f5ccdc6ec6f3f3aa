"""Fixtures of the engine tests: tiny random models, built in-process (no downloads)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

pytest.importorskip("torch")
pytest.importorskip("transformers")

from sage.llm.testing.tiny import save_tiny_model, tiny_llama


@pytest.fixture(scope="session")
def target() -> Any:
    return tiny_llama(128, seed=0)


@pytest.fixture(scope="session")
def draft() -> Any:
    """A different random model with the target's vocabulary (low but nonzero agreement)."""
    return tiny_llama(128, seed=1, layers=1, hidden=32)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny model with the character tokenizer (vocab 80 > 75 tokenizer entries)."""
    return save_tiny_model(tmp_path_factory.mktemp("target"), 80, seed=2)


@pytest.fixture(scope="session")
def draft_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("draft"), 80, seed=3)


@pytest.fixture(scope="session")
def other_vocab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("other"), 96, seed=4, with_tokenizer=False)
