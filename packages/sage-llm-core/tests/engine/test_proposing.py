"""sage.llm.proposing: the plugin-author module offers what the built-in proposers use."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

import sage.llm.proposing as proposing
from sage.llm.proposer import ProposerContext
from sage.llm.testing.tiny import save_tiny_model, tiny_llama

PACKAGES = Path(__file__).resolve().parents[3]


def test_every_exported_name_exists() -> None:
    for name in proposing.__all__:
        assert hasattr(proposing, name), name


@pytest.mark.parametrize(
    "package",
    [
        "sage-llm-strategy-ngram",
        "sage-llm-strategy-draft",
        "sage-llm-strategy-dynamic",
        "sage-llm-strategy-suffix",
        "sage-llm-strategy-eagle",
    ],
)
def test_builtin_plugins_import_no_engine_internals(package: str) -> None:
    """The built-in plugins use sage.llm and sage.llm.proposing, as a third party would."""
    for path in (PACKAGES / package / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                assert not name.startswith("sage.llm.engines"), f"{path.name} imports {name}"


def test_sampling_params_follow_the_context() -> None:
    context = ProposerContext(temperature=0.7, top_k=5, top_p=0.9)
    assert proposing.sampling_params(context) == proposing.SamplingParams(0.7, 5, 0.9)
    assert proposing.sampling_params(ProposerContext()).greedy


def test_load_draft_model_checks_and_returns_the_target_eos(tmp_path: Path) -> None:
    target = tiny_llama(80, seed=0, device="cpu")
    target.generation_config.eos_token_id = 2
    context = ProposerContext(target=target, vocab_size=80, device="cpu", dtype=target.dtype)
    draft = proposing.load_draft_model(str(save_tiny_model(tmp_path / "d", 80, seed=1)), context)
    assert proposing.output_vocab_size(draft.model) == 80
    assert draft.eos_token_ids == frozenset({2})
    with pytest.raises(proposing.VocabularyMismatchError, match="96"):
        proposing.load_draft_model(str(save_tiny_model(tmp_path / "o", 96, seed=1)), context)
    with pytest.raises(ValueError, match="target model"):
        proposing.load_draft_model(str(tmp_path / "d"), ProposerContext())
    with pytest.raises(proposing.ModelLoadError, match="auto_download is off"):
        proposing.load_draft_model("org/not-here", context, allow_hub=False)


def test_vllm_proposer_is_exported_lazily() -> None:
    """Plugins subclass VLLMProposer from here; importing the module loads no vLLM package."""
    import subprocess
    import sys

    code = (
        "import sys, sage.llm.proposing as p\n"
        "before = 'sage.llm.engines.vllm.proposer' in sys.modules\n"
        "from sage.llm.engines.vllm.proposer import VLLMProposer\n"
        "print(before, p.VLLMProposer is VLLMProposer, 'vllm' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "True", "False"]
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = proposing.Nope


def test_the_engine_tells_a_finishing_proposer_the_whole_output() -> None:
    """finish() gets every generated token, the last step's too, once per request."""
    pytest.importorskip("torch")
    from sage.llm.engines.transformers import TransformersEngine
    from sage.llm.proposer import FinishingProposer, Proposal
    from sage.llm.testing.tiny import tiny_llama

    class Recording:
        def __init__(self) -> None:
            self.finished: list[list[int]] = []

        def start(self, prompt_ids: Any) -> None: ...

        def propose(self, context_ids: Any, max_tokens: int) -> Proposal:
            return Proposal([int(context_ids[-1])][:max_tokens])

        def on_verified(self, num_proposed: int, num_accepted: int) -> None: ...

        def finish(self, output_ids: Any) -> None:
            self.finished.append(list(output_ids))

    proposer = Recording()
    assert isinstance(proposer, FinishingProposer)
    engine = TransformersEngine(tiny_llama(64, seed=0))
    first = engine.generate([5, 6, 7], proposer=proposer, max_tokens=9)
    second = engine.generate([8, 9], proposer=proposer, max_tokens=4)
    assert proposer.finished == [first.token_ids, second.token_ids]
