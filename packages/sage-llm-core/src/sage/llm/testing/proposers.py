"""Conformance tests for a strategy's per-step face (its proposer), run on a tiny model.

A strategy package that implements ``make_proposer`` subclasses this next to
:class:`~sage.llm.testing.StrategyConformanceTests`::

    from sage.llm.testing import ProposerConformanceTests

    class TestNgramProposer(ProposerConformanceTests):
        strategy_name = "ngram"
        valid_params = {"n": 3, "num_speculative_tokens": 4}

The checks are what the reference engine relies on: proposals are token ids inside the
vocabulary and never longer than the engine allows, ``draft_probs`` (when given) is one
distribution per proposed token, ``start`` resets per-request state, and greedy generation with
the proposer equals plain greedy generation token for token. A strategy that needs a model
file (a draft model) overrides :meth:`proposer_params` and uses ``tiny_model_dir``.
Needs pytest, torch and transformers.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sage.llm.registry import get_strategy

__all__ = ["ProposerConformanceTests"]

VOCAB = 128


class ProposerConformanceTests:
    """Subclass, set ``strategy_name`` and ``valid_params``; pytest runs the proposer checks."""

    strategy_name: ClassVar[str]
    valid_params: ClassVar[Mapping[str, Any]] = {}
    max_new_tokens: ClassVar[int] = 32
    timing_dependent: ClassVar[bool] = False
    """Set ``True`` for a proposer whose choices depend on measured step times (an adaptive
    depth): a repeated run must then give the same tokens, but may draft differently."""

    def proposer_params(self, tiny_model_dir: Path) -> dict[str, Any]:
        """Parameters of the strategy under test; override to point at ``tiny_model_dir``."""
        return dict(self.valid_params)

    # -- fixtures --------------------------------------------------------------------------

    @pytest.fixture(scope="class")
    @classmethod
    def tiny_target(cls) -> Any:
        from sage.llm.engines.transformers.loading import set_cpu_environment

        set_cpu_environment()  # OMP_WAIT_POLICY=PASSIVE, before torch starts
        pytest.importorskip("torch")
        pytest.importorskip("transformers")
        from sage.llm.testing.tiny import tiny_llama

        return tiny_llama(VOCAB, seed=0)

    @pytest.fixture(scope="class")
    @classmethod
    def tiny_model_dir(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        """A saved tiny model with the target's vocabulary (usable as a draft model)."""
        pytest.importorskip("transformers")
        from sage.llm.testing.tiny import save_tiny_model

        return save_tiny_model(
            tmp_path_factory.mktemp("tiny-model"), VOCAB, seed=1, with_tokenizer=False
        )

    @pytest.fixture(scope="class")
    @classmethod
    def engine(cls, tiny_target: Any) -> Any:
        from sage.llm.engines.transformers import TransformersEngine

        return TransformersEngine(tiny_target)

    @pytest.fixture
    def strategy(self, tiny_model_dir: Path) -> Any:
        return get_strategy(self.strategy_name, **self.proposer_params(tiny_model_dir))

    @pytest.fixture
    def prompts(self) -> list[list[int]]:
        from sage.llm.testing.tiny import repetitive_prompt

        return [repetitive_prompt(20, seed=s, vocab_size=VOCAB) for s in range(2)] + [[7], [7, 9]]

    # -- checks ----------------------------------------------------------------------------

    def test_make_proposer_returns_a_proposer(self, engine: Any, strategy: Any) -> None:
        from sage.llm.engines.transformers import SamplingParams
        from sage.llm.proposer import Proposer

        proposer = engine.make_proposer(strategy, SamplingParams())
        assert isinstance(proposer, Proposer)

    @pytest.mark.parametrize("temperature", [0.0, 0.8])
    def test_proposals_are_well_formed(
        self, engine: Any, strategy: Any, prompts: list[list[int]], temperature: float
    ) -> None:
        from sage.llm.engines.transformers import SamplingParams
        from sage.llm.proposer import Proposal

        proposer = engine.make_proposer(strategy, SamplingParams(temperature=temperature))
        for prompt in prompts:
            proposer.start(prompt)
            context = list(prompt)
            for max_tokens in (0, 1, 3, 8):
                proposal = proposer.propose(context, max_tokens)
                assert isinstance(proposal, Proposal)
                assert len(proposal.token_ids) <= max_tokens
                for token in proposal.token_ids:
                    assert isinstance(token, int)
                    assert 0 <= token < VOCAB
                if proposal.draft_probs is not None:
                    probs = proposal.draft_probs
                    assert tuple(probs.shape) == (len(proposal.token_ids), VOCAB)
                    assert bool(((probs.sum(-1) - 1).abs() < 1e-3).all())
                proposer.on_verified(len(proposal.token_ids), 0)
                context.append(3)  # the engine commits at least one token per step

    def test_greedy_generation_is_lossless(
        self, engine: Any, strategy: Any, prompts: list[list[int]]
    ) -> None:
        for prompt in prompts:
            plain = engine.generate(prompt, max_tokens=self.max_new_tokens)
            spec = engine.generate(prompt, strategy=strategy, max_tokens=self.max_new_tokens)
            assert spec.token_ids == plain.token_ids

    def test_start_resets_per_request_state(
        self, engine: Any, strategy: Any, prompts: list[list[int]]
    ) -> None:
        first = [engine.generate(p, strategy=strategy, max_tokens=16) for p in prompts]
        again = [engine.generate(p, strategy=strategy, max_tokens=16) for p in prompts]
        for a, b in zip(first, again, strict=True):
            assert a.token_ids == b.token_ids
            if self.timing_dependent:
                continue
            assert a.metrics.num_draft_tokens == b.metrics.num_draft_tokens
            assert a.metrics.num_accepted_tokens == b.metrics.num_accepted_tokens
