"""The draft-model proposer: own KV cache kept in step with the committed context."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sage.llm.testing import ProposerConformanceTests

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts
torch = pytest.importorskip("torch")


class TestDraftProposerConformance(ProposerConformanceTests):
    strategy_name = "draft"

    def proposer_params(self, tiny_model_dir: Path) -> dict[str, Any]:
        return {"draft_model_id": str(tiny_model_dir), "num_speculative_tokens": 3}


def test_greedy_proposals_equal_the_draft_models_own_greedy_continuation() -> None:
    from sage.llm.testing.tiny import reference_greedy, repetitive_prompt, tiny_llama
    from sage_llm_strategy_draft.proposer import DraftModelProposer

    draft = tiny_llama(64, seed=3)
    proposer = DraftModelProposer(draft, 4)
    context = repetitive_prompt(10, seed=1, vocab_size=64)
    proposer.start(context)
    for step in range(12):
        proposal = proposer.propose(context, 4)
        assert proposal.token_ids == reference_greedy(draft, context, 4)
        # Commit a varying part of the proposal and a token of our own, as the engine would.
        keep = step % 5
        context = [*context, *proposal.token_ids[:keep], (step * 7) % 64]
        proposer.on_verified(4, min(keep, 4))


def test_each_call_reports_what_it_read_and_what_it_drafted() -> None:
    """``last_timing``: the first pass reads what the draft missed (the whole context at the
    start, then only the newly committed tokens), each further token is one pass."""
    from sage.llm.proposing import DraftTiming
    from sage.llm.testing.tiny import repetitive_prompt, tiny_llama
    from sage_llm_strategy_draft.proposer import DraftModelProposer

    proposer = DraftModelProposer(tiny_llama(64, seed=3), 4)
    ticks = iter(range(1000))
    proposer.set_clock(lambda: float(next(ticks)))  # one second per reading of the clock
    context = repetitive_prompt(10, seed=1, vocab_size=64)
    proposer.start(context)
    assert proposer.last_timing is None
    proposal = proposer.propose(context, 4)
    assert proposer.last_timing == DraftTiming(len(context), 1.0, len(proposal), 1.0)
    context = [*context, *proposal.token_ids[:2], 7]  # two kept, one token of the target's
    proposal = proposer.propose(context, 3)
    timing = proposer.last_timing
    assert timing is not None
    assert timing.read_tokens == 1  # the target's token: the kept ones are cached already
    assert timing.drafted == len(proposal)


def test_mismatched_vocabulary_is_refused(tmp_path: Path) -> None:
    from sage.llm.engines.transformers.errors import VocabularyMismatchError
    from sage.llm.proposer import ProposerContext
    from sage.llm.testing.tiny import save_tiny_model, tiny_llama
    from sage_llm_strategy_draft.proposer import build_draft_proposer

    target = tiny_llama(64, seed=0)
    draft_dir = save_tiny_model(tmp_path / "draft", 72, seed=1, with_tokenizer=False)
    context = ProposerContext(target=target, vocab_size=64, device="cpu", dtype=torch.float32)
    with pytest.raises(VocabularyMismatchError, match="72 tokens") as info:
        build_draft_proposer(str(draft_dir), 3, context)
    assert str(draft_dir) in str(info.value)
    assert "64" in str(info.value)


def test_no_auto_download_refuses_hub_ids() -> None:
    from sage.llm.engines.transformers.errors import ModelLoadError
    from sage.llm.proposer import ProposerContext
    from sage.llm.testing.tiny import tiny_llama
    from sage_llm_strategy_draft.proposer import build_draft_proposer

    context = ProposerContext(target=tiny_llama(64), vocab_size=64, device="cpu")
    with pytest.raises(ModelLoadError, match="auto_download is off"):
        build_draft_proposer("org/draft", 3, context, allow_hub=False)


def greedy_run_probabilities(draft: Any, context: list[int], tokens: list[int]) -> list[float]:
    """The draft's probability of each of its greedy ``tokens`` after ``context``."""
    with torch.inference_mode():
        logits = draft(input_ids=torch.tensor([[*context, *tokens[:-1]]])).logits[0]
    probs = torch.softmax(logits[len(context) - 1 :].float(), dim=-1)
    return [float(probs[i, t]) for i, t in enumerate(tokens)]


def test_cumulative_stop_ends_the_draft_once_the_whole_run_is_unlikely() -> None:
    """The draft stops after the token that takes the product of its probabilities below the
    threshold, however sure each token is on its own."""
    from sage.llm.testing.tiny import reference_greedy, repetitive_prompt, tiny_llama
    from sage_llm_strategy_draft.proposer import DraftModelProposer

    draft = tiny_llama(64, seed=3)
    context = repetitive_prompt(10, seed=1, vocab_size=64)
    full = reference_greedy(draft, context, 6)
    run = 1.0
    runs = []
    for p in greedy_run_probabilities(draft, context, full):
        run *= p
        runs.append(run)
    for stop_after in (1, 2, 4):  # a threshold between two products: stop right after
        threshold = (runs[stop_after - 1] + runs[stop_after - 2]) / 2 if stop_after > 1 else 1.0
        proposer = DraftModelProposer(draft, 6, cumulative_confidence_threshold=threshold)
        proposer.start(context)
        assert proposer.propose(context, 6).token_ids == full[:stop_after]
    lenient = DraftModelProposer(draft, 6, cumulative_confidence_threshold=runs[-2] / 2)
    lenient.start(context)
    assert lenient.propose(context, 6).token_ids == full  # never below: the whole k
    with pytest.raises(ValueError, match="cumulative_confidence_threshold"):
        DraftModelProposer(draft, 6, cumulative_confidence_threshold=1.5)
