"""The n-gram proposer: longest match first, most recent occurrence, incremental index."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from sage.llm.testing import ProposerConformanceTests
from sage_llm_strategy_ngram.proposer import NgramProposer


class TestNgramProposerConformance(ProposerConformanceTests):
    strategy_name = "ngram"
    valid_params = {"n": 3, "num_speculative_tokens": 4}


def brute_force(
    context: Sequence[int], k: int, max_n: int, min_n: int, recent: bool = False
) -> list[int]:
    """Rescan everything: the reference the incremental index must agree with."""
    length = len(context)
    for n in range(min(max_n, length - 1), min_n - 1, -1):
        suffix = list(context[length - n :])
        starts = range(length - n - 1, -1, -1) if recent else range(length - n)
        for start in starts:
            if list(context[start : start + n]) == suffix:
                return list(context[start + n : start + n + k])
    return []


@pytest.mark.parametrize("prefer", ["first", "recent"])
def test_agrees_with_a_full_rescan_on_random_text(prefer: str) -> None:
    rng = random.Random(0)
    for trial in range(30):
        vocab = rng.choice([3, 5, 20])
        max_n, min_n, k = rng.choice([(3, 1, 4), (5, 2, 3), (2, 2, 6), (1, 1, 2)])
        proposer = NgramProposer(k, max_n, min_n, prefer=prefer)  # type: ignore[arg-type]
        context = [rng.randrange(vocab) for _ in range(rng.randrange(1, 6))]
        proposer.start(context)
        for _ in range(40):
            got = proposer.propose(context, k).token_ids
            expected = brute_force(context, k, max_n, min_n, recent=prefer == "recent")
            assert got == expected, (trial, context)
            context.extend(rng.randrange(vocab) for _ in range(rng.randrange(1, 4)))


def test_longest_match_wins() -> None:
    proposer = NgramProposer(2, 3, 1, prefer="recent")
    proposer.start([])
    # "9" alone last appeared before 5; "8 9" appeared before 6 -> the 2-gram decides.
    context = [8, 9, 6, 6, 1, 9, 5, 5, 8, 9]
    assert proposer.propose(context, 2).token_ids == [6, 6]


def test_first_or_most_recent_occurrence() -> None:
    context = [1, 2, 3, 9, 1, 2, 4, 9, 1, 2]
    first = NgramProposer(1, 2)
    first.start([])
    assert first.propose(context, 1).token_ids == [3]  # transformers' rule
    recent = NgramProposer(1, 2, prefer="recent")
    recent.start([])
    assert recent.propose(context, 1).token_ids == [4]


def test_respects_max_tokens_and_short_prompts() -> None:
    proposer = NgramProposer(5, 4, 2)
    proposer.start([1])
    assert proposer.propose([1], 5).token_ids == []
    assert proposer.propose([1, 2], 5).token_ids == []
    assert proposer.propose([1, 2, 1, 2], 0).token_ids == []
    assert proposer.propose([1, 2, 1, 2, 1, 2], 3).token_ids == [1, 2]  # up to the end
    assert proposer.propose([1, 2, 1, 2, 1, 2, 3, 1, 2], 3).token_ids == [1, 2, 1]


class CountingList(list):  # type: ignore[type-arg]
    """A context that counts how many tokens the proposer reads."""

    reads = 0

    def __getitem__(self, item):  # type: ignore[no-untyped-def]
        value = super().__getitem__(item)
        CountingList.reads += len(value) if isinstance(item, slice) else 1
        return value


def test_each_step_reads_only_new_tokens() -> None:
    proposer = NgramProposer(4, 3, 1)
    context = CountingList(random.Random(1).randrange(50) for _ in range(2000))
    proposer.start(context)
    proposer.propose(context, 4)  # indexes the prompt once
    CountingList.reads = 0
    for step in range(200):
        context.append(step % 50)
        proposer.propose(context, 4)
    # Per step: (new tokens x n-gram sizes x n) for the index plus a few lookups, not 2000.
    assert CountingList.reads < 200 * 40


def test_invalid_configuration() -> None:
    with pytest.raises(ValueError, match="min_n <= max_n"):
        NgramProposer(4, 2, 3)
    with pytest.raises(ValueError, match="prefer"):
        NgramProposer(4, 2, 1, prefer="last")  # type: ignore[arg-type]
