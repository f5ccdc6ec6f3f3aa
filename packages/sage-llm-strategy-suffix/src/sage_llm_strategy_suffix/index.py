"""A depth-bounded suffix trie with counts: the pure-Python index behind suffix decoding.

Every substring of up to ``max_depth`` tokens of every sequence added is a path from the root;
a node's ``count`` is how many times its substring occurs. Appending a token costs
``O(max_depth)``: the sequence keeps the nodes of its current suffixes (lengths 1 to
``max_depth - 1``) and each steps to its child on the new token. Removing a sequence walks the
same paths back, so a cache of earlier outputs can evict one.

:meth:`SuffixTree.speculate` follows SuffixDecoding (Oliaro et al., NeurIPS 2025) and Snowflake's
``arctic_inference`` cache, so both backends propose alike: for every length ``m`` at which the
context's last ``m`` tokens occur, walk the most frequent continuation while its estimated
probability (the product of ``child.count / node.count`` along the path) stays at or above
``min_token_prob``, for at most ``max_spec_factor * m + max_spec_offset`` tokens; the candidate
with the highest score (the sum of those probabilities; a longer match wins a tie) is proposed.
Candidates are tried by their budget, largest first, and the search stops where no budget left
can beat the best score: a repeated passage matched at every depth costs one walk, not one per
match length.
A longer match earns a longer draft, and a continuation seen only once after a short match is
cut where it stops being the likely one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


class _Node:
    """A substring: how often it occurs, the tokens that followed it, and the sequence that
    last passed through it (so a cache can tell which earlier output a proposal came from)."""

    __slots__ = ("children", "count", "seq")

    def __init__(self, seq: int) -> None:
        self.count = 0
        self.children: dict[int, _Node] = {}
        self.seq = seq


@dataclass
class Draft:
    """A speculation: tokens, their estimated probabilities, the score (their sum), the length
    of the context match it continues, and the sequence it was read from (``-1``: none)."""

    token_ids: list[int] = field(default_factory=list)
    probs: list[float] = field(default_factory=list)
    score: float = 0.0
    match_len: int = 0
    seq: int = -1


class SuffixTree:
    """Suffixes of several token sequences (each under an integer id), up to ``max_depth`` deep."""

    def __init__(self, max_depth: int) -> None:
        if max_depth < 1:
            raise ValueError(f"max_depth must be >= 1, got {max_depth}.")
        self.max_depth = max_depth
        self.root = _Node(-1)
        self._active: dict[int, list[_Node]] = {}  # per sequence: nodes of its suffixes
        self._tokens: dict[int, list[int]] = {}  # per sequence: its tokens (for removal)

    def __contains__(self, seq: int) -> bool:
        return seq in self._tokens

    def num_tokens(self, seq: int) -> int:
        return len(self._tokens.get(seq, ()))

    def extend(self, seq: int, tokens: Sequence[int]) -> None:
        """Append ``tokens`` to sequence ``seq`` (a new id starts a new sequence)."""
        stored = self._tokens.setdefault(seq, [])
        active = self._active.setdefault(seq, [])
        root = self.root
        deepest = self.max_depth - 1  # a suffix this long cannot grow another level
        for token in tokens:
            stepped: list[_Node] = []
            for parent in (root, *active[:deepest]):
                child = parent.children.get(token)
                if child is None:
                    child = parent.children[token] = _Node(seq)
                child.count += 1
                child.seq = seq
                stepped.append(child)
            active[:] = stepped
            stored.append(token)

    def remove(self, seq: int) -> None:
        """Take sequence ``seq`` out: every substring it added loses one count."""
        tokens = self._tokens.pop(seq, None)
        self._active.pop(seq, None)
        if tokens is None:
            return
        depth = self.max_depth
        for start in range(len(tokens)):
            node = self.root
            for token in tokens[start : start + depth]:
                child = node.children[token]
                child.count -= 1
                if child.count == 0:  # its descendants on this path reach 0 too
                    del node.children[token]
                    break
                node = child

    def match(self, pattern: Sequence[int], length: int) -> _Node | None:
        """The node of ``pattern``'s last ``length`` tokens, or None if they never occurred."""
        node: _Node | None = self.root
        for token in pattern[len(pattern) - length :]:
            node = node.children.get(token) if node is not None else None
            if node is None:
                return None
        return node

    def speculate(
        self,
        context: Sequence[int],
        max_spec_tokens: int,
        max_spec_factor: float = 1.0,
        max_spec_offset: float = 0.0,
        min_token_prob: float = 0.1,
        min_match_length: int = 1,
    ) -> Draft:
        """The best-scoring continuation of ``context`` (see the module docstring), continuing
        a match of at least ``min_match_length`` tokens."""
        matches: list[_Node] = []
        for length in range(1, min(len(context), self.max_depth - 1) + 1):
            node = self.match(context, length)
            if node is None:  # a longer suffix cannot occur when this one does not
                break
            matches.append(node)
        return self.speculate_from(
            matches,
            max_spec_tokens,
            max_spec_factor,
            max_spec_offset,
            min_token_prob,
            min_match_length,
        )

    def suffix_nodes(self, seq: int) -> list[_Node]:
        """The nodes of sequence ``seq``'s last 1, 2, ... tokens, kept as it grows: what
        :meth:`speculate` would look up for a context equal to that sequence."""
        return self._active.get(seq, [])

    def speculate_from(
        self,
        matches: Sequence[_Node],
        max_spec_tokens: int,
        max_spec_factor: float = 1.0,
        max_spec_offset: float = 0.0,
        min_token_prob: float = 0.1,
        min_match_length: int = 1,
    ) -> Draft:
        """:meth:`speculate` given the nodes of the context's last 1, 2, ... tokens (a
        :class:`Matcher`'s, or :meth:`suffix_nodes`), so a step needs no walk from the root
        per match length (quadratic in ``max_depth``)."""
        return best_of_matches(
            range(min_match_length, min(len(matches), self.max_depth - 1) + 1),
            lambda length, budget: _follow(matches[length - 1], budget, min_token_prob),
            max_spec_tokens,
            max_spec_factor,
            max_spec_offset,
            self.max_depth,
        )


def best_of_matches(
    lengths: range,
    follow: Callable[[int, int], Draft],
    max_spec_tokens: int,
    max_spec_factor: float,
    max_spec_offset: float,
    max_depth: int,
) -> Draft:
    """The rule every index of ours proposes by: of the context's matches (``lengths``), the
    draft ``follow(length, budget)`` that scores highest, a longer match winning a tie.

    Each match's budget is ``max_spec_factor`` tokens per matched token (plus the offset),
    within ``max_spec_tokens`` and the depth left below it. Candidates are tried by budget,
    largest first: a draft scores at most its budget (probabilities are <= 1), so once no
    candidate left can beat the best, or tie it from a longer match, the rest are skipped.
    """
    best = Draft()
    if max_spec_tokens <= 0:
        return best
    candidates = []  # (budget, match length), the most promising first
    for length in lengths:
        budget = int(length * max_spec_factor + max_spec_offset + 1e-6)
        candidates.append((min(max_spec_tokens, budget, max_depth - length), length))
    candidates.sort(reverse=True)
    for budget, length in candidates:
        if budget < best.score:
            break
        if budget == best.score and length < best.match_len:
            continue
        draft = follow(length, budget)
        if (draft.score, length) > (best.score, best.match_len):
            draft.match_len = length
            best = draft
    return best


class Matcher:
    """Where a growing context's suffixes occur in a tree that does not change meanwhile (the
    cache of earlier outputs during one request): appending a token steps each matched suffix
    to its child, ``O(max_depth)``, instead of matching every length again each step."""

    def __init__(self, tree: SuffixTree) -> None:
        self.tree = tree
        self.nodes: list[_Node] = []  # the nodes of the context's last 1, 2, ... tokens

    def extend(self, tokens: Sequence[int]) -> None:
        root = self.tree.root
        longest = self.tree.max_depth - 1
        nodes = self.nodes
        if 0 < longest <= len(tokens):
            # the matches depend on the last ``longest`` tokens only: a prompt of n tokens
            # costs O(max_depth^2) steps, not O(n * max_depth)
            nodes = []
            tokens = tokens[len(tokens) - longest :]
        for token in tokens:
            first = root.children.get(token)
            if first is None:
                nodes = []
                continue
            stepped = [first]
            for node in nodes[: longest - 1]:
                child = node.children.get(token)
                if child is None:  # nor does any longer suffix occur
                    break
                stepped.append(child)
            nodes = stepped
        self.nodes = nodes


def _follow(node: _Node, budget: int, min_token_prob: float) -> Draft:
    """Walk the most frequent children from ``node`` while the path's probability holds."""
    draft = Draft(seq=node.seq)
    prob = 1.0
    while len(draft.token_ids) < budget and node.children:
        token, child = max(node.children.items(), key=_by_count)
        prob *= child.count / node.count
        if prob < min_token_prob:
            break
        draft.token_ids.append(token)
        draft.probs.append(prob)
        draft.score += prob
        draft.seq = child.seq
        node = child
    return draft


def _by_count(item: tuple[int, _Node]) -> int:
    return item[1].count
