"""dynamic-lookahead's proposer: conformance, what it learns, and losslessness for every k.

Losslessness is checked with the real controller and with a scripted one that walks through
every depth it may choose (0..max_tokens), for both inner proposers (n-gram lookup and a draft
model with the early confidence stop), greedy token for token and, for sampling, by comparing
the output distribution with the target's exact one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import pytest

from sage.llm import get_strategy
from sage.llm.proposer import Proposal, ProposerContext
from sage.llm.testing import ProposerConformanceTests
from sage.llm.testing.statistics import chi2_critical, chi_square
from sage_llm_strategy_dynamic.controller import LookaheadController
from sage_llm_strategy_dynamic.proposer import DynamicProposer, wrap


class TestDynamicProposerConformance(ProposerConformanceTests):
    strategy_name = "dynamic-lookahead"
    valid_params = {"min_tokens": 1, "max_tokens": 6, "prompt_lookup_max": 3}
    timing_dependent = True  # k comes from measured step times as well as from acceptance


class TestDynamicDraftProposerConformance(ProposerConformanceTests):
    strategy_name = "dynamic-lookahead"
    timing_dependent = True  # k comes from measured draft and pass times

    def proposer_params(self, tiny_model_dir: Any) -> dict[str, Any]:
        return {"min_tokens": 0, "max_tokens": 5, "draft_model_id": str(tiny_model_dir)}


class Scripted(LookaheadController):
    """Chooses the depths of ``script`` in turn (cut to what is allowed), learning nothing."""

    def __init__(self, min_tokens: int, max_tokens: int, script: Sequence[int]) -> None:
        super().__init__(min_tokens, max_tokens)
        self.script = list(script)
        self.step = 0

    def choose(self, limit: int, *, learns_when_off: bool = False, catch_up: int = 0) -> int:
        k = self.script[self.step % len(self.script)]
        self.step += 1
        return min(k, limit)


class Recorder:
    """A third party's proposer: proposes ``[1, 2, 3, ...]`` and records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[int] = []
        self.verified: list[tuple[int, int]] = []

    def start(self, prompt_ids: Sequence[int]) -> None:
        self.asked = []

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        self.asked.append(max_tokens)
        return Proposal(list(range(1, max_tokens + 1)))

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        self.verified.append((num_proposed, num_accepted))


def test_the_seed_example_means_what_it_says() -> None:
    strategy = get_strategy("dynamic-lookahead", min_tokens=3, max_tokens=10)
    proposer = strategy.make_proposer(ProposerContext())
    assert isinstance(proposer, DynamicProposer)
    controller = proposer.controller
    assert (controller.min_tokens, controller.max_tokens) == (3, 10)
    proposer.set_clock(lambda: 0.0)  # no timings: the costs are the profile below
    proposer.set_cost_profile([1.0, 1.38, 1.48, 1.5, 1.53, 1.55, 1.65, 1.63, 1.7, 1.72, 1.75])
    proposer.start([9])
    for _ in range(30):  # nothing is ever accepted: k falls to 3, never lower, never off
        proposal = proposer.propose([9, *range(20), *range(20)], 64)
        proposer.on_verified(len(proposal), 0)
    assert proposer.chosen[-1] == 3
    assert min(proposer.chosen) == 3


def test_a_third_party_proposer_is_asked_for_the_chosen_k_only() -> None:
    inner = Recorder()
    proposer = wrap(inner, 0, 6)
    proposer.set_clock(lambda: 0.0)  # no step times: the choice rests on acceptance
    proposer.start([5])
    for _ in range(20):
        proposal = proposer.propose([5, 5, 5], 64)
        assert len(proposal) <= 6
        proposer.on_verified(len(proposal), len(proposal))  # everything accepted
    assert inner.asked[-1] == 6
    assert all(1 <= k <= 6 for k in inner.asked)
    proposer.set_max_tokens_cap(2)
    assert len(proposer.propose([5, 5, 5], 64)) == 2


def test_cheap_proposals_are_learned_from_committed_tokens_while_off() -> None:
    """With speculation off, n-gram proposals are still checked against what gets committed."""
    proposer = get_strategy("dynamic", min_tokens=0, max_tokens=4).make_proposer(ProposerContext())
    assert isinstance(proposer, DynamicProposer)
    proposer.controller.set_cap(0)  # keep it off: only the committed tokens can teach it
    text = [7, 1, 2, 3, 4, 5, 6, 8, 1, 2, 3, 4, 5, 6]
    proposer.start(text[:9])
    for n in range(9, len(text) + 1):
        assert len(proposer.propose(text[:n], 64)) == 0
        proposer.on_verified(0, 0)
    estimates = proposer.controller.acceptance.estimates()
    assert estimates[0] > 0.9  # every lookup after "1, 2" proposed the right continuation
    assert proposer.controller.acceptance.trials[0] > 2


class CatchingUpDraft:
    """A model draft on a fake clock: reading a token it missed costs ``read`` seconds, each
    drafted token ``per_token``; it has seen everything up to its last drafting call."""

    def __init__(self, clock: list[float], read: float = 0.05, per_token: float = 0.1) -> None:
        self.clock, self.read, self.per_token = clock, read, per_token
        self.seen = 0

    def start(self, prompt_ids: Sequence[int]) -> None:
        self.seen = 0

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        missed = max(1, len(context_ids) - self.seen)
        self.clock[0] += self.read * missed + self.per_token * max_tokens
        self.seen = len(context_ids) + max_tokens
        return Proposal([1] * max_tokens)

    def on_verified(self, num_proposed: int, num_accepted: int) -> None: ...


def run_accepting_everything(
    proposer: DynamicProposer, clock: list[float], prompt: list[int], steps: int, verify: float
) -> None:
    """``steps`` steps of a request on the fake ``clock``: every proposal accepted whole, each
    verify pass taking ``verify`` seconds, the target adding one token of its own."""
    proposer.set_clock(lambda: clock[0])
    context = list(prompt)
    proposer.start(context)
    for _ in range(steps):
        proposal = proposer.propose(context, 64)
        clock[0] += verify
        proposer.on_verified(len(proposal), len(proposal))
        context = context + [1] * (len(proposal) + 1)


def test_a_drafts_catching_up_is_not_counted_as_drafting() -> None:
    """After plain steps (and at a request's start) the draft first reads what it missed: that
    is the price of switching speculation on, not the cost of a drafted token, which is
    measured only on steps that follow a drafting step."""
    clock = [0.0]
    inner = CatchingUpDraft(clock)
    proposer = DynamicProposer(inner, Scripted(0, 4, [3, 3, 3, 0, 0, 0, 0, 0, 0, 3, 3]))
    # a long prompt: the first draft reads all of it (10 s)
    run_accepting_everything(proposer, clock, list(range(200)), steps=22, verify=0.3)
    per_token = proposer.controller.costs.draft_per_token
    assert per_token == pytest.approx(inner.per_token + inner.read / 3, rel=0.01)


class Timing(NamedTuple):
    """Any object with these fields will do (sage.llm.proposing.DraftTiming is one)."""

    read_tokens: int
    read_seconds: float
    drafted: int
    draft_seconds: float


class ReportingDraft(CatchingUpDraft):
    """The same draft, reporting how each call spent its time (the draft model's last_timing):
    a first pass that reads what it missed and drafts one token, then a pass per token."""

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        missed = max(1, len(context_ids) - self.seen)
        read = self.read * missed + self.per_token
        proposal = super().propose(context_ids, max_tokens)
        rest = self.per_token * (max_tokens - 1)
        self.last_timing = Timing(missed, read, max_tokens, rest)
        return proposal


def test_a_draft_that_reports_its_timing_is_priced_from_its_first_call() -> None:
    """With last_timing the cost per drafted token is known from the first call, a probe at a
    request's start included (before, only from a second drafting step in a row)."""
    clock = [0.0]
    inner = ReportingDraft(clock)
    controller = Scripted(0, 4, [3])
    proposer = DynamicProposer(inner, controller)
    proposer.set_clock(lambda: clock[0])
    context = list(range(200))
    proposer.start(context)
    proposer.propose(context, 64)
    assert controller.costs.draft_per_token == pytest.approx(inner.per_token)


class StoppingDraft(ReportingDraft):
    """The same draft with a cumulative confidence stop, recording the threshold it was
    given at each call (the draft model's ``cumulative_confidence_threshold``)."""

    def __init__(self, clock: list[float]) -> None:
        super().__init__(clock)
        self.confidence_threshold = 0.0  # an EarlyStoppingProposer has both stops
        self.cumulative_confidence_threshold = 0.0
        self.given: list[float] = []

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        self.given.append(self.cumulative_confidence_threshold)
        return super().propose(context_ids, max_tokens)


def test_a_drafts_cumulative_stop_is_set_every_step_from_the_measured_costs() -> None:
    """Left unset, the stop is the break-even of one more drafted token, from what was
    measured so far; a number fixes it; 0 turns it off. Only a fixed or measured stop lets
    the controller draft as deep as allowed."""
    clock = [0.0]
    inner = StoppingDraft(clock)
    controller = Scripted(0, 4, [3])
    proposer = DynamicProposer(inner, controller)
    assert controller.draft_stops
    run_accepting_everything(proposer, clock, list(range(20)), steps=4, verify=0.5)
    assert inner.given[0] == 0.0  # nothing measured yet: no stop
    assert inner.given[-1] == pytest.approx(controller.costs.draft_break_even())
    assert inner.given[-1] > 0.1  # a drafted token costs 0.1 s against 0.5 s plain

    fixed = StoppingDraft(clock)
    DynamicProposer(fixed, Scripted(0, 4, [3]), cumulative_confidence_threshold=0.3)
    assert fixed.cumulative_confidence_threshold == 0.3
    off = StoppingDraft(clock)
    off_controller = Scripted(0, 4, [3])
    DynamicProposer(off, off_controller, cumulative_confidence_threshold=0.0)
    assert off.cumulative_confidence_threshold == 0.0
    assert not off_controller.draft_stops
    plain_controller = Scripted(0, 4, [3])
    DynamicProposer(ReportingDraft(clock), plain_controller)  # no stop to set: left alone
    assert not plain_controller.draft_stops
    with pytest.raises(ValueError, match="cumulative confidence stop"):
        DynamicProposer(
            ReportingDraft(clock), Scripted(0, 4, [3]), cumulative_confidence_threshold=0.3
        )


# -- losslessness -----------------------------------------------------------------------------

MAX_NEW = 40
DEPTH = 6


@pytest.fixture(scope="module")
def target() -> Any:
    pytest.importorskip("transformers")
    from sage.llm.testing.tiny import tiny_llama

    return tiny_llama(128, seed=0)


@pytest.fixture(scope="module")
def near_draft(target: Any) -> Any:
    """The target plus noise: agrees often but not always, and is unsure now and then."""
    from sage.llm.testing.tiny import noisy_copy

    return noisy_copy(target, 0.05, seed=7)


@pytest.fixture(scope="module")
def prompts() -> list[list[int]]:
    from sage.llm.testing.tiny import repetitive_prompt

    return [repetitive_prompt(24, seed=s) for s in range(3)]


@pytest.fixture(scope="module")
def references(target: Any, prompts: list[list[int]]) -> list[list[int]]:
    from sage.llm.testing.tiny import reference_greedy

    return [reference_greedy(target, p, MAX_NEW) for p in prompts]


def ngram_inner() -> Any:
    from sage_llm_strategy_ngram.proposer import NgramProposer

    return NgramProposer(DEPTH, 3, 1)


def draft_inner(model: Any, sampling: Any = None) -> Any:
    from sage_llm_strategy_draft.proposer import DraftModelProposer

    return DraftModelProposer(model, DEPTH, sampling)


EVERY_K = [0, 1, 2, 3, 4, 5, 6, 6, 3, 0, 0, 5, 1]  # every depth, and every change between them


@pytest.mark.parametrize("kind", ["ngram", "draft", "draft-confidence", "draft-cumulative"])
def test_greedy_is_lossless_for_every_k(
    target: Any,
    near_draft: Any,
    prompts: list[list[int]],
    references: list[list[int]],
    kind: str,
) -> None:
    from sage.llm.engines.transformers import TransformersEngine

    engine = TransformersEngine(target)
    for controller in (Scripted(0, DEPTH, EVERY_K), LookaheadController(0, DEPTH)):
        if kind == "ngram":
            proposer = DynamicProposer(ngram_inner(), controller, cheap=True)
        else:
            threshold = 0.3 if kind == "draft-confidence" else 0.0
            inner = draft_inner(near_draft)
            proposer = DynamicProposer(
                inner,
                controller,
                confidence_threshold=threshold,
                # "draft" and "draft-confidence": the default, set from the measured costs
                cumulative_confidence_threshold=0.5 if kind == "draft-cumulative" else None,
            )
        accepted = 0
        seen: set[int] = set()
        for prompt, ref in zip(prompts, references, strict=True):
            result = engine.generate(prompt, proposer=proposer, max_tokens=MAX_NEW)
            assert result.token_ids == ref
            accepted += result.metrics.num_accepted_tokens
            seen.update(proposer.chosen)
        if isinstance(controller, Scripted):  # the real one may rightly switch off here
            assert accepted > 0
            assert seen == set(range(DEPTH + 1))


def test_strategy_by_name_is_lossless_with_its_draft(
    target: Any, prompts: list[list[int]], references: list[list[int]], tmp_path: Any
) -> None:
    from sage.llm.engines.transformers import TransformersEngine
    from sage.llm.testing.tiny import save_tiny_model

    draft_dir = save_tiny_model(tmp_path / "draft", 128, seed=0, with_tokenizer=False)
    engine = TransformersEngine(target)
    # min_tokens=1: the draft runs every step, whatever the measured costs say (with 0 the
    # controller may rightly keep a draft as slow as the target off for a whole request)
    spec = f"dynamic-lookahead:min_tokens=1,max_tokens=5,draft_model_id={draft_dir}"
    for prompt, ref in zip(prompts, references, strict=True):
        result = engine.generate(prompt, strategy=spec, max_tokens=MAX_NEW)
        assert result.token_ids == ref
        assert result.metrics.num_accepted_tokens > 0  # the draft is the target: all accepted


# -- sampling keeps the target's distribution -------------------------------------------------

VOCAB = 6
SAMPLES = 1200
PROMPT = [1, 2, 3, 1, 2, 4, 1, 2, 0, 5]


@pytest.mark.parametrize("kind", ["ngram", "draft-confidence", "draft-cumulative"])
def test_sampling_keeps_the_target_distribution(kind: str) -> None:
    pytest.importorskip("transformers")
    import torch

    from sage.llm.engines.transformers import SamplingParams, TransformersEngine
    from sage.llm.engines.transformers.sampling import probabilities
    from sage.llm.testing.tiny import tiny_llama

    sampling = SamplingParams(temperature=1.0, top_k=5)
    model = tiny_llama(VOCAB, seed=21, layers=1, hidden=32)

    def next_probs(context: list[int]) -> Any:
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([context])).logits[0, -1]
        return probabilities(logits, sampling)

    # Exact P(t2, t3): the tokens of the first speculative step (up to 2 proposed).
    exact: dict[Any, float] = {(b, c): 0.0 for b in range(VOCAB) for c in range(VOCAB)}
    p1 = next_probs(PROMPT)
    for a in range(VOCAB):
        if float(p1[a]) == 0.0:
            continue
        p2 = next_probs([*PROMPT, a])
        for b in range(VOCAB):
            if float(p2[b]) == 0.0:
                continue
            p3 = next_probs([*PROMPT, a, b])
            for c in range(VOCAB):
                exact[(b, c)] += float(p1[a] * p2[b] * p3[c])
    if kind == "ngram":
        inner: Any = ngram_inner()
    else:
        from sage.llm.testing.tiny import noisy_copy

        inner = draft_inner(noisy_copy(model, 0.3, seed=0), sampling)
    proposer = DynamicProposer(
        inner,
        Scripted(0, DEPTH, [2, 1, 0, 2]),
        cheap=kind == "ngram",
        confidence_threshold=0.5 if kind == "draft-confidence" else 0.0,
        # whether the second token is drafted depends on the first one's sampled probability
        cumulative_confidence_threshold=0.25 if kind == "draft-cumulative" else None,
    )
    depths: set[int] = set()  # tokens drafted when asked for 2
    propose = inner.propose

    def recording(context_ids: Sequence[int], max_tokens: int) -> Proposal:
        proposal = propose(context_ids, max_tokens)
        if max_tokens == 2:
            depths.add(len(proposal.token_ids))
        return proposal

    inner.propose = recording
    engine = TransformersEngine(model)
    counts: dict[Any, int] = {}
    drafts = 0
    for seed in range(SAMPLES):
        result = engine.generate(
            PROMPT, proposer=proposer, max_tokens=4, temperature=1.0, top_k=5, seed=seed
        )
        cell = tuple(result.token_ids[1:3])
        counts[cell] = counts.get(cell, 0) + 1
        drafts += result.metrics.num_drafts
    assert drafts > SAMPLES // 4
    if kind == "draft-cumulative":
        assert depths == {1, 2}, "the stop should end some drafts early and not others"
    stat, df = chi_square(counts, exact, SAMPLES)
    bound = chi2_critical(df)
    assert stat < bound, f"chi2={stat:.1f} > {bound:.1f}"


def test_the_targets_confidence_reaches_a_costly_proposers_controller_and_inner() -> None:
    """A model draft's controller hears the engine's report (and an inner proposer that
    listens too); a cheap lookup, which learns from committed tokens, ignores it."""
    from sage.llm.proposer import ConfidenceAwareProposer

    class Inner:
        def __init__(self) -> None:
            self.heard: list[float] = []

        def start(self, prompt_ids: Sequence[int]) -> None: ...

        def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
            return Proposal([])

        def on_verified(self, num_proposed: int, num_accepted: int) -> None: ...

        def on_target_confidence(self, confidence: Sequence[float]) -> None:
            self.heard.extend(confidence)

    costly = wrap(Inner(), 0, 4)
    assert isinstance(costly, ConfidenceAwareProposer)
    costly.start([1, 2])
    costly.on_target_confidence([0.9, 0.8])  # type: ignore[attr-defined]
    assert costly.controller.hears_confidence
    assert costly.inner.heard == [0.9, 0.8]
    deaf = wrap(Inner(), 0, 4, listens=False)
    deaf.on_target_confidence([0.9])  # type: ignore[attr-defined]
    assert not deaf.controller.hears_confidence
    assert deaf.inner.heard == [0.9]
    cheap = wrap(Inner(), 0, 4, cheap=True)
    cheap.start([1, 2])
    cheap.on_target_confidence([0.9])  # type: ignore[attr-defined]
    assert not cheap.controller.hears_confidence
    assert cheap.inner.heard == [0.9]
    ngram = get_strategy("dynamic-lookahead").make_proposer(ProposerContext())
    assert not isinstance(ngram, ConfidenceAwareProposer), "the engine computes nothing for it"
