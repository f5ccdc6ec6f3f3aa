"""Fixtures of the control-plane tests.

Most tests drive :class:`sage.llm.testing.control_plane.ScriptedBackend` (no model, no torch):
they run in every venv. Tests on a real tiny model need torch, transformers and the ngram
strategy and skip without them (``nox -s serve`` has them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts

from sage.llm.control_plane import ControlPlaneManager


@pytest.fixture
def cp() -> Iterator[ControlPlaneManager]:
    manager = ControlPlaneManager("never", load_entry_points=False)
    yield manager
    manager.shutdown(timeout=10)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("sage_llm_strategy_ngram")
    import sage.llm.engines.transformers  # noqa: F401  (thread policy before torch)
    from sage.llm.testing.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("cp-tiny"), 80, seed=2)
