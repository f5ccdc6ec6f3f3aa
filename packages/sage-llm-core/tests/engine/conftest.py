"""Fixtures of the engine tests: tiny random models, built in-process (no downloads)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts

NEEDED = (
    "torch",
    "transformers",
    "sage_llm_strategy_ngram",
    "sage_llm_strategy_draft",
    "sage_llm_strategy_dynamic",
)
MISSING = [name for name in NEEDED if importlib.util.find_spec(name) is None]
if MISSING:
    # The core's own venv holds neither torch nor the strategies: these tests run in
    # `nox -s engine`, which installs sage-llm-core[transformers] and the three strategies.
    collect_ignore_glob = ["test_*.py"]


def pytest_report_header() -> str | None:
    if MISSING:
        return f"engine tests not collected: {', '.join(MISSING)} missing (run nox -s engine)"
    return None


@pytest.fixture(scope="session")
def target() -> Any:
    from sage.llm.testing.tiny import tiny_llama

    return tiny_llama(128, seed=0)


@pytest.fixture(scope="session")
def draft() -> Any:
    """A different random model with the target's vocabulary (low but nonzero agreement)."""
    from sage.llm.testing.tiny import tiny_llama

    return tiny_llama(128, seed=1, layers=1, hidden=32)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny model with the character tokenizer (vocab 80 > 75 tokenizer entries)."""
    from sage.llm.testing.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("target"), 80, seed=2)


@pytest.fixture(scope="session")
def draft_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sage.llm.testing.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("draft"), 80, seed=3)


@pytest.fixture(scope="session")
def other_vocab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sage.llm.testing.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("other"), 96, seed=4, with_tokenizer=False)
