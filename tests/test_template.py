"""A new strategy made from the template builds, installs and passes the conformance suite."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from conftest import ROOT, build_wheel, make_venv, wheel


def _render():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "new_strategy", ROOT / "scripts" / "new_strategy.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.render


def test_template_strategy_passes_conformance_from_wheels(tmp_path: Path) -> None:
    project = _render()("lookahead-demo", tmp_path)
    built = build_wheel(project, tmp_path / "wheels")
    env = make_venv(tmp_path / "venv")
    env.pip_install(f"{wheel('sage-llm-core')}[testing]", built)
    rows = env.strategies_json()
    assert rows["lookahead-demo"]["status"] == "ok"
    assert rows["lookahead-demo"]["distribution"] == "sage-llm-strategy-lookahead-demo"
    proc = env.run(
        str(env.bin / "python"), "-m", "pytest", "-q", str(project / "tests"), check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " passed" in proc.stdout


def test_template_refuses_bad_names(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="lowercase"):
        _render()("Bad_Name", tmp_path)
