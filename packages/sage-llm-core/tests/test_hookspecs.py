"""The contract is stated once, in sage/llm/hookspecs.py; everything else is checked against it.

The base class gives every optional hook a default with the spec's signature, the required
hooks have none, and docs/architecture.md names every hook, so neither can drift from the spec.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from sage.llm.hookspecs import REQUIRED_HOOKS, SPEC_NAMES, StrategySpec
from sage.llm.strategy import SpeculativeStrategy

DOCS = Path(__file__).resolve().parents[3] / "docs"


def parameter_names(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


@pytest.mark.parametrize("hook", sorted(SPEC_NAMES))
def test_base_class_method_has_the_spec_signature(hook: str) -> None:
    spec = getattr(StrategySpec, hook)
    default = getattr(SpeculativeStrategy, hook, None)
    assert default is not None, f"SpeculativeStrategy has no {hook}(); add it with the spec's"
    assert parameter_names(default) == parameter_names(spec)


@pytest.mark.parametrize("hook", sorted(SPEC_NAMES - REQUIRED_HOOKS))
def test_optional_hooks_have_a_working_default(hook: str) -> None:
    class Minimal(SpeculativeStrategy):
        name = "minimal"

        def apply(self, engine_config: dict[str, object]) -> None:
            pass

    method = getattr(Minimal(), hook)
    extra = [None] * (len(parameter_names(getattr(StrategySpec, hook))) - 1)
    assert method(*extra) is None, f"the default {hook}() must mean 'not implemented'"


@pytest.mark.parametrize("hook", sorted(REQUIRED_HOOKS))
def test_required_hooks_have_no_default(hook: str) -> None:
    with pytest.raises(NotImplementedError):
        getattr(SpeculativeStrategy(), hook)({})


def test_architecture_doc_names_every_hook() -> None:
    text = (DOCS / "architecture.md").read_text("utf-8")
    missing = [hook for hook in sorted(SPEC_NAMES) if f"`{hook}" not in text]
    assert not missing, f"docs/architecture.md does not describe the hooks {missing}"


def test_proposing_imports_neither_torch_nor_transformers() -> None:
    code = (
        "import sys, sage.llm.proposing; "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
