"""Fixtures of the server tests: real HTTP servers on loopback, driven by the openai client.

Needs the ``serve`` extra and the ``openai`` client (``nox -s serve`` installs both); the
tests are not collected without them. Model-backed tests also need torch and the ngram
strategy (a tiny model is saved by the fixture: no download).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

NEEDED = ("starlette", "uvicorn", "prometheus_client", "openai", "httpx")
MISSING = [name for name in NEEDED if importlib.util.find_spec(name) is None]
if MISSING:
    collect_ignore_glob = ["test_*.py"]


def pytest_report_header() -> str | None:
    if MISSING:
        return f"server tests not collected: {', '.join(MISSING)} missing (run nox -s serve)"
    return None


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("sage_llm_strategy_ngram")
    import sage.llm.engines.transformers  # noqa: F401  (thread policy before torch)
    from sage.llm.testing.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("server-tiny"), 80, seed=2)


@pytest.fixture(scope="module")
def tiny_server(tiny_dir: Path) -> Iterator[Any]:
    """A server with one reference engine, ngram, policy adaptive, served as "tiny"."""
    from sage.llm.control_plane import ControlPlaneManager
    from sage.llm.server import ServerThread

    cp = ControlPlaneManager("adaptive", load_entry_points=False)
    cp.start_engine(str(tiny_dir), "ngram:n=2", served_model_name="tiny", engine_id="tiny-1")
    with ServerThread(cp) as server:
        server.manager = cp
        yield server
    cp.shutdown()
