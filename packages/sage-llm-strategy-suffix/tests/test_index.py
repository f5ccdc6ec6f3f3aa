"""The suffix trie: counts equal a brute-force count, removal undoes addition, speculation
follows the most frequent continuation within the match-length and probability limits."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import pytest

from sage_llm_strategy_suffix.cache import ResponseCache
from sage_llm_strategy_suffix.index import Matcher, SuffixTree, _Node


def substring_counts(sequences: Sequence[Sequence[int]], depth: int) -> Counter[tuple[int, ...]]:
    counts: Counter[tuple[int, ...]] = Counter()
    for seq in sequences:
        for start in range(len(seq)):
            for end in range(start + 1, min(len(seq), start + depth) + 1):
                counts[tuple(seq[start:end])] += 1
    return counts


def tree_counts(tree: SuffixTree) -> Counter[tuple[int, ...]]:
    counts: Counter[tuple[int, ...]] = Counter()

    def walk(node: _Node, path: tuple[int, ...]) -> None:
        for token, child in node.children.items():
            assert child.count > 0
            counts[(*path, token)] = child.count
            walk(child, (*path, token))

    walk(tree.root, ())
    return counts


def test_counts_equal_a_brute_force_count_through_adds_and_removes() -> None:
    rng = random.Random(0)
    for depth in (1, 3, 6):
        tree = SuffixTree(depth)
        live: dict[int, list[int]] = {}
        for seq in range(12):
            tokens = [rng.randrange(4) for _ in range(rng.randrange(0, 15))]
            for i in range(0, len(tokens), 4):  # appended in pieces, as steps commit them
                tree.extend(seq, tokens[i : i + 4])
            live[seq] = tokens
            if seq % 3 == 2:
                gone = rng.choice(sorted(live))
                tree.remove(gone)
                del live[gone]
            assert tree_counts(tree) == substring_counts(list(live.values()), depth)


def test_speculation_follows_the_most_frequent_continuation() -> None:
    tree = SuffixTree(16)
    tree.extend(0, [1, 2, 3, 4, 9, 1, 2, 3, 4, 9, 1, 2, 3, 5])
    draft = tree.speculate([7, 2, 3], max_spec_tokens=8, max_spec_factor=4.0, min_token_prob=0.1)
    # "2 3" was followed by 4 twice and 5 once: 4 (p=2/3), then 9 (p stays 2/3), then 1 ...
    assert draft.token_ids[:3] == [4, 9, 1]
    assert draft.match_len == 2
    assert draft.probs[0] == pytest.approx(2 / 3)


def test_length_is_bounded_by_the_match_and_by_the_probability() -> None:
    tree = SuffixTree(32)
    tree.extend(0, list(range(20)))
    # A 2-token match with factor 1.5 allows 3 tokens; k allows 8.
    draft = tree.speculate([5, 6], max_spec_tokens=8, max_spec_factor=1.5, min_token_prob=0.1)
    assert draft.token_ids == [7, 8, 9]
    draft = tree.speculate([5, 6], max_spec_tokens=2, max_spec_factor=4.0, min_token_prob=0.1)
    assert draft.token_ids == [7, 8]
    # After "1" came 2 once and 3 three times: p(3) = 0.75 passes 0.5, p(2) would not.
    tree = SuffixTree(8)
    tree.extend(0, [1, 3, 1, 3, 1, 3, 1, 2])
    assert tree.speculate([1], 1, 1.0, min_token_prob=0.5).token_ids == [3]
    assert tree.speculate([1], 1, 1.0, min_token_prob=0.8).token_ids == []


def test_a_minimum_match_length_skips_shorter_matches() -> None:
    tree = SuffixTree(16)
    tree.extend(0, [1, 2, 3, 4, 5, 6, 7])
    # "9 4": only "4" occurred; a 1-token match proposes, a 2-token minimum does not
    assert tree.speculate([9, 4], 4, 1.0, min_token_prob=0.1).token_ids == [5]
    assert tree.speculate([9, 4], 4, 1.0, min_token_prob=0.1, min_match_length=2).token_ids == []
    # "3 4" occurred: the 2-token match proposes two tokens, and the match is reported
    draft = tree.speculate([3, 4], 4, 1.0, min_token_prob=0.1, min_match_length=2)
    assert (draft.token_ids, draft.match_len) == ([5, 6], 2)
    assert tree.speculate([3, 4], 4, 1.0, min_token_prob=0.1, min_match_length=3).token_ids == []
    cache = ResponseCache(16, max_requests=4, max_tokens=100)
    cache.add([1, 2, 3, 4, 5, 6, 7])
    assert cache.speculate([9, 4], 4, 1.0, 0.1, 2).token_ids == []
    assert cache.speculate([3, 4], 4, 1.0, 0.1, 2).token_ids == [5, 6]


def test_depth_bounds_match_plus_proposal() -> None:
    tree = SuffixTree(4)
    tree.extend(0, list(range(10)))
    draft = tree.speculate([0, 1, 2], max_spec_tokens=8, max_spec_factor=8.0, min_token_prob=0.0)
    assert len(draft.token_ids) + draft.match_len <= 4
    # the 3-token match leaves one level, the 1-token match three: the higher score wins
    assert (draft.token_ids, draft.match_len) == ([3, 4, 5], 1)


def test_cache_evicts_least_recently_used_by_requests_and_tokens() -> None:
    cache = ResponseCache(8, max_requests=2, max_tokens=100)
    cache.add([1, 2, 3])
    cache.add([4, 5, 6])
    cache.touch(0)  # [1, 2, 3] was used: [4, 5, 6] is now the oldest
    cache.add([7, 8, 9])
    assert len(cache) == 2
    assert cache.speculate([4], 4, 1.0, 0.1).token_ids == []
    assert cache.speculate([1], 4, 1.0, 0.1).token_ids == [2]
    tokens = ResponseCache(8, max_requests=10, max_tokens=5)
    tokens.add([1, 2, 3])
    tokens.add([4, 5, 6])  # 6 tokens > 5: the first output goes
    assert (len(tokens), tokens.num_tokens) == (1, 3)
    assert tokens.speculate([1], 4, 1.0, 0.1).token_ids == []
    off = ResponseCache(8, max_requests=0, max_tokens=100)
    off.add([1, 2, 3])
    assert len(off) == 0


def test_incremental_matches_propose_what_matching_from_the_root_proposes() -> None:
    """The proposer's per-step shortcuts (a Matcher over the cache, the request tree's own
    suffix nodes) find the same drafts as matching every length from the root."""
    rng = random.Random(1)
    for depth in (3, 8, 24):
        cache = SuffixTree(depth)
        for seq in range(4):
            cache.extend(seq, [rng.randrange(5) for _ in range(40)])
        local = SuffixTree(depth)
        matcher = Matcher(cache)
        context: list[int] = []
        for _ in range(30):
            piece = [rng.randrange(5) for _ in range(rng.randrange(1, 4))]
            context += piece
            local.extend(0, piece)
            matcher.extend(piece)
            whole = Matcher(cache)  # a prompt arrives at once: only its tail is matched
            whole.extend(context)
            assert whole.nodes == matcher.nodes
            for minimum in (1, 2):
                for tree, nodes in ((cache, matcher.nodes), (local, local.suffix_nodes(0))):
                    walked = tree.speculate(
                        context, 6, 1.5, min_token_prob=0.2, min_match_length=minimum
                    )
                    stepped = tree.speculate_from(
                        nodes, 6, 1.5, min_token_prob=0.2, min_match_length=minimum
                    )
                    assert (stepped.token_ids, stepped.match_len) == (
                        walked.token_ids,
                        walked.match_len,
                    )
