"""The adaptive vLLM proposer without vLLM: truncation to k, learning from commits, batch rows,
the load gate.

A small simulation plays vLLM's part: it calls ``propose`` with the batch's committed tokens,
accepts the longest prefix of each draft that matches the target's next tokens, and commits
that prefix plus one token, as vLLM's greedy verification does. The tests of the per-request
controller open the load gate (:class:`OpenGate`); the gate's own tests run it on a simulated
machine whose spare compute runs out as the batch grows.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest

from sage.llm import InvalidParameterError, get_strategy
from sage_llm_strategy_dynamic import vllm_proposer
from sage_llm_strategy_dynamic.load_gate import MIN_STEPS, LoadGate
from sage_llm_strategy_dynamic.vllm_proposer import (
    DynamicNgramProposer,
    accepted_length,
    proposer_class_name,
)


class _Spec:
    def __init__(self, k: int) -> None:
        self.num_speculative_tokens = k


class _Config:
    def __init__(self, k: int) -> None:
        self.speculative_config = _Spec(k)


class _Table:
    """``token_ids_cpu[i, :n]`` over plain lists, like vLLM's numpy array."""

    def __init__(self, rows: list[list[int]]) -> None:
        self.rows = rows

    def __getitem__(self, index: tuple[int, slice]) -> list[int]:
        i, cols = index
        return self.rows[i][cols]


class OpenGate(LoadGate):
    """Every step speculates: for tests of what the per-request controllers do."""

    def decide(self, batch: int) -> bool:
        return True


def make(
    k: int = 6, *, min_tokens: int = 0, lookup: tuple[int, int] = (1, 3), gate: bool = False
) -> Any:
    """A proposer on a simulated clock (see :func:`step`), so that its choices do not depend on
    how busy the machine is; its load gate is open unless ``gate``."""
    cls = getattr(vllm_proposer, proposer_class_name(min_tokens, *lookup).rpartition(".")[2])
    proposer = cls(_Config(k))
    proposer.now = 0.0
    proposer.clock = lambda: proposer.now
    if not gate:
        proposer.gate = OpenGate()
    return proposer


def step(proposer: Any, contexts: list[list[int]], active: Sequence[bool] | None = None) -> Any:
    active = active or [True] * len(contexts)
    sampled = [[c[-1]] if on else [] for c, on in zip(contexts, active, strict=True)]
    drafts = proposer.propose(sampled, [len(c) for c in contexts], _Table(contexts))
    # The verify pass that follows: 1 ms per token, as on a target whose cost grows with k.
    proposer.now += 1e-3 * (1 + max(map(len, drafts), default=0))
    return drafts


def busy_step(proposer: Any, contexts: list[list[int]], truths: list[list[int]]) -> list[int]:
    """One step of a batch on a simulated machine with spare compute for 16 tokens a pass:
    a pass costs 10 ms up to 16 tokens in all, then 10 ms more per further 16. Each row
    commits its accepted draft prefix plus one token of ``truths`` (its target output)."""
    sampled = [[c[-1]] for c in contexts]
    drafts = proposer.propose(sampled, [len(c) for c in contexts], _Table(contexts))
    tokens = sum(1 + len(d) for d in drafts)
    proposer.now += 0.010 * max(1.0, tokens / 16)
    lengths = []
    for context, truth, draft in zip(contexts, truths, drafts, strict=True):
        done = len(context) - 3
        following = truth[done : done + len(draft) + 1]
        context += following[: accepted_length(draft, following, 0) + 1]
        lengths.append(len(draft))
    return lengths


def simulate(proposer: Any, prompt: list[int], target: Sequence[int], steps: int) -> list[int]:
    """Run one request for ``steps`` vLLM steps; the target's output is ``target``."""
    context = list(prompt)
    accepted_total = 0
    for _ in range(steps):
        [draft] = step(proposer, [context])
        done = len(context) - len(prompt)
        truth = target[done : done + len(draft) + 1]
        accepted = accepted_length(draft, truth, 0)
        accepted_total += accepted
        context += truth[: accepted + 1]
    return [accepted_total, len(context) - len(prompt)]


CYCLE = [5, 6, 7, 8, 9, 10, 11]


def test_class_name_round_trip_and_parameters() -> None:
    path = proposer_class_name(2, 1, 3)
    cls = getattr(vllm_proposer, path.rpartition(".")[2])
    assert issubclass(cls, DynamicNgramProposer)
    assert (cls.min_tokens, cls.lookup_min, cls.lookup_max) == (2, 1, 3)
    assert f"{cls.__module__}.{cls.__qualname__}" == path
    assert getattr(vllm_proposer, path.rpartition(".")[2]) is cls  # built once
    with pytest.raises(AttributeError, match="lookup_min <= lookup_max"):
        _ = vllm_proposer.DynamicNgram_k0_n3_1
    with pytest.raises(AttributeError):
        _ = vllm_proposer.NoSuchThing


def test_vllm_side_loader_accepts_the_path() -> None:
    from sage.llm.engines.vllm.proposer import load_class

    assert load_class(proposer_class_name(0, 2, 4)).lookup_max == 4  # type: ignore[attr-defined]


def test_accepted_length_counts_the_matching_prefix() -> None:
    assert accepted_length([1, 2, 3], [0, 1, 2, 9, 9], 1) == 2
    assert accepted_length([1, 2], [0, 1, 2, 3], 1) == 2
    assert accepted_length([], [0, 1], 1) == 0
    assert accepted_length([4], [0, 1], 1) == 0


def test_drafts_are_truncated_to_the_controllers_k() -> None:
    proposer = make(6)
    context = CYCLE * 3
    [draft] = step(proposer, [context])
    [k] = proposer.chosen_k()[0]
    assert len(draft) == k <= 6
    assert draft == (CYCLE * 2)[: len(draft)]


def test_a_repetitive_request_gets_deeper_drafts_and_acceptances() -> None:
    proposer = make(6)
    accepted, generated = simulate(proposer, CYCLE * 2, CYCLE * 20, steps=12)
    chosen = proposer.chosen_k()[0]
    assert accepted >= 12 * 5  # nearly every drafted token was accepted
    assert chosen[-1] == 6  # and the controller stays at max_tokens
    assert generated == 12 + accepted


def test_k_falls_when_drafts_stop_matching() -> None:
    proposer = make(6)
    prompt = CYCLE * 2
    simulate(proposer, prompt, CYCLE * 20, steps=8)
    high = proposer.chosen_k()[0][-1]
    # The same request goes on, but the target now picks tokens at random, from the cycle's and
    # from new ones: the lookup finds matches that are mostly rejected, and no match after a
    # new token (a 1-token pass, which tells the controller what a step without a draft costs).
    [request] = proposer._rows.values()
    context = (list(prompt) + CYCLE * 20)[: request.length]
    rng = random.Random(0)
    for _ in range(16):
        [draft] = step(proposer, [context])
        truth = [rng.randrange(5, 20) for _ in range(len(draft) + 1)]
        context += truth[: accepted_length(draft, truth, 0) + 1]
    chosen = proposer.chosen_k()[0]
    assert high == 6
    assert min(chosen[8:]) < high


def test_min_tokens_is_a_floor() -> None:
    proposer = make(6, min_tokens=3)
    simulate(proposer, [1, 2, 3, 1, 2, 3], [40 + i for i in range(60)], steps=10)
    assert all(k >= 3 or k == 0 for k in proposer.chosen_k()[0])
    assert max(proposer.chosen_k()[0]) >= 3


def test_rows_not_decoding_get_empty_drafts_and_keep_their_state() -> None:
    proposer = make(4)
    a, b = CYCLE * 2, [1, 2, 1, 2, 1]
    drafts = step(proposer, [a, b], active=[True, False])
    assert drafts[1] == []
    kept = proposer._rows[1]
    step(proposer, [a, [*b, 2]])
    assert proposer._rows[1] is kept


def test_a_moved_request_keeps_its_controller_and_a_new_one_starts_fresh() -> None:
    proposer = make(4)
    a, b = CYCLE * 2, [1, 2, 1, 2, 1]
    step(proposer, [a, b])
    state_b = proposer._rows[1]
    step(proposer, [[*b, 2]])  # a finished, vLLM moved b to row 0
    assert proposer._rows[0] is state_b
    step(proposer, [[30, 31, 30]])  # another request in row 0
    assert proposer._rows[0] is not state_b


def test_a_new_request_with_the_same_system_prompt_is_a_new_request() -> None:
    """Chat requests share their first tokens (the system prompt). A new request that takes a
    finished one's row, even a longer one, gets its own state and lookup index: its drafts come
    from its own context, not from the old request's."""
    proposer = make(4, lookup=(2, 3))
    system = list(range(100, 130))
    first = [*system, 1, 2, 3, 1, 2]
    step(proposer, [first])
    old = proposer._rows[0]
    second = [*system, 7, 8, 9, 10, 11, 7, 8]  # longer than the first was
    [draft] = step(proposer, [second])
    assert proposer._rows[0] is not old
    assert draft == [9, 10, 11, 7][: len(draft)]
    assert draft


def test_strategy_modes_on_vllm() -> None:
    adaptive: dict[str, Any] = {}
    strategy = get_strategy("dynamic", min_tokens=1, max_tokens=5, prompt_lookup_max=3)
    strategy.apply(adaptive)
    assert adaptive == {
        "speculative_config": {"method": "custom_class", "num_speculative_tokens": 5}
    }
    assert strategy.vllm_proposer_class() == proposer_class_name(1, 2, 3)
    static = get_strategy("dynamic", mode="static", min_tokens=1, max_tokens=5)
    assert static.vllm_proposer_class() is None
    config: dict[str, Any] = {}
    static.apply(config)
    assert config["speculative_config"]["method"] == "ngram"


def test_adaptive_with_a_draft_model_says_to_use_static() -> None:
    strategy = get_strategy("dynamic", draft_model_id="small")
    with pytest.raises(InvalidParameterError, match="mode='static'"):
        strategy.apply({})
    with pytest.raises(InvalidParameterError, match="mode"):
        get_strategy("dynamic", mode="fast")


def run_batch(proposer: Any, batch: int, steps: int, truth: list[int]) -> tuple[int, int]:
    """``batch`` requests whose output copies their prompt's cycle (n-gram drafts match 3 of
    4 times); returns (steps that speculated, steps in all)."""
    contexts = [[500 + r, 600 + r, 700 + r] for r in range(batch)]
    truths = [[t + 1000 * r for t in truth] for r in range(batch)]
    for context, own in zip(contexts, truths, strict=True):
        context[:] = [*context, *own[:8]]
    before = proposer.gate.steps[True]
    for _ in range(steps):
        busy_step(proposer, contexts, truths)
    return proposer.gate.steps[True] - before, steps


def test_the_gate_speculates_where_it_pays_and_not_where_the_batch_fills_the_machine() -> None:
    """Alone, a 7-token pass costs what a 1-token pass does and commits ~4 tokens: the gate
    keeps speculation on. Sixteen requests already fill the pass; their drafts multiply its
    cost by up to 7 and are a quarter rejected: it keeps speculation off. Each after
    measuring both modes, and never for more than the exploration plus one step in 16."""
    proposer = make(6, min_tokens=6, gate=True)
    truth = ([1, 2, 3, 4] * 3 + [9]) * 40  # a copy with a break: drafts partly rejected
    on, total = run_batch(proposer, 1, 60, truth)
    assert on >= total - MIN_STEPS - total // 16
    on, total = run_batch(proposer, 16, 60, truth)
    assert on <= MIN_STEPS + total // 16
    speculative, plain = proposer.gate.rates()[0]
    assert speculative > plain
    speculative, plain = proposer.gate.rates()[4]  # batches of 9-16
    assert plain > speculative
    # a plain step proposes nothing and still learns nothing wrong: drafts are all empty
    assert proposer.draft_lengths[0] >= 16 * (total - MIN_STEPS - total // 16)


def test_steps_that_prefill_are_not_judged() -> None:
    proposer = make(4, gate=True)
    a = CYCLE * 2
    step(proposer, [a])
    step(proposer, [[*a, 5]])
    judged = sum(
        m.steps for band in proposer.gate.bands.values() for m in (band.speculative, band.plain)
    )
    step(proposer, [[*a, 5, 6], [40, 41, 42]])  # a prompt joined: its prefill ran in this step
    step(proposer, [[*a, 5, 6, 7], [40, 41, 42]], active=[True, False])  # one still prefilling
    assert judged == 1  # the second step: one request alone, decoding
    after = sum(
        m.steps for band in proposer.gate.bands.values() for m in (band.speculative, band.plain)
    )
    assert after == judged


def test_the_static_table() -> None:
    from sage_llm_strategy_dynamic.controller import batch_size_schedule

    assert batch_size_schedule(0, 10) == [
        [1, 4, 10],
        [5, 16, 5],
        [17, 64, 2],
        [65, 256, 1],
        [257, 1024, 0],
    ]
    assert batch_size_schedule(3, 10)[-1] == [17, 64, 3]  # min_tokens is a floor
