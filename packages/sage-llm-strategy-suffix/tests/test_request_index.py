"""The position index proposes what a suffix trie of the same tokens proposes, tie-breaks
included, for every setting the proposer passes, as the sequence grows."""

from __future__ import annotations

import random

import pytest

from sage_llm_strategy_suffix.index import SuffixTree
from sage_llm_strategy_suffix.request_index import RequestIndex


@pytest.mark.parametrize("depth", [2, 3, 5, 8, 24, 64])
@pytest.mark.parametrize("minimum", [1, 2, 3])
def test_drafts_equal_the_suffix_tries(depth: int, minimum: int) -> None:
    if minimum >= depth:
        pytest.skip("the strategy refuses min_match_length >= max_tree_depth")
    rng = random.Random(depth * 10 + minimum)
    for trial in range(6):
        alphabet = rng.choice((2, 3, 5, 12))
        tree = SuffixTree(depth)
        index = RequestIndex(depth, minimum)
        # a repeated passage now and then, as prompts quoting code have
        tokens: list[int] = []
        while len(tokens) < 120:
            if tokens and rng.random() < 0.2:
                start = rng.randrange(len(tokens))
                piece = tokens[start : start + rng.randrange(1, 30)]
            else:
                piece = [rng.randrange(alphabet) for _ in range(rng.randrange(1, 6))]
            tree.extend(0, piece)
            index.extend(piece)
            tokens += piece
            for k, factor, prob in ((24, 2.0, 0.1), (5, 1.0, 0.0), (8, 0.5, 0.3), (3, 4.0, 0.6)):
                expected = tree.speculate_from(
                    tree.suffix_nodes(0), k, factor, min_token_prob=prob, min_match_length=minimum
                )
                got = index.speculate(k, factor, min_token_prob=prob)
                assert (got.token_ids, got.match_len, got.score) == (
                    expected.token_ids,
                    expected.match_len,
                    pytest.approx(expected.score),
                ), (trial, tokens, k, factor, prob)
                assert got.probs == pytest.approx(expected.probs)


def test_growing_costs_no_work_per_depth() -> None:
    """The index holds one entry per token whatever the depth (the trie holds up to depth)."""
    index = RequestIndex(64, 2)
    index.extend(range(1000))
    assert len(index) == 1000
    assert sum(len(ends) for ends in index._ends.values()) == 999


def test_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        RequestIndex(0)
    with pytest.raises(ValueError, match="min_match_length"):
        RequestIndex(4, 0)
