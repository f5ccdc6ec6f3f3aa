"""The suffix strategy's per-step proposers: the pure-Python index, or arctic-inference's cache.

Both match the context's end in the request itself (its prompt and everything generated so far)
and in one tree of earlier requests' outputs shared by every request the proposer serves; each
step they propose the better-scoring of the two speculations (see
:mod:`~sage_llm_strategy_suffix.index`). The pure-Python proposer indexes the request by
position (:mod:`~sage_llm_strategy_suffix.request_index`: the trie's drafts, built in O(n)).
The reference engine keeps one proposer per strategy and sampling settings for its lifetime, so
the shared tree is the engine's: ``sage-llm serve`` and the control plane gain from earlier
requests, a single ``sage-llm generate`` has nothing earlier to gain from.

A finished request's output enters the shared tree through :meth:`finish` (the engine's optional
``finish`` hook, :class:`sage.llm.proposer.FinishingProposer`). Driven by something that never
calls it, the next :meth:`start` commits what the proposer saw of the previous output instead
(all of it but the last step's tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sage.llm.proposer import Proposal
from sage_llm_strategy_suffix.cache import ResponseCache
from sage_llm_strategy_suffix.index import Matcher
from sage_llm_strategy_suffix.request_index import RequestIndex


class SuffixProposer:
    """Suffix decoding on the pure-Python index (no compiled dependency)."""

    def __init__(
        self,
        num_speculative_tokens: int,
        *,
        max_tree_depth: int = 64,
        max_spec_factor: float = 2.0,
        min_token_prob: float = 0.1,
        max_cached_requests: int = 10000,
        max_cached_tokens: int = 64_000,
        min_match_length: int = 2,
        cache_min_match_length: int = 3,
    ) -> None:
        if num_speculative_tokens < 1:
            raise ValueError(f"num_speculative_tokens must be >= 1, got {num_speculative_tokens}.")
        self.num_speculative_tokens = num_speculative_tokens
        self.max_tree_depth = max_tree_depth
        self.max_spec_factor = max_spec_factor
        self.min_token_prob = min_token_prob
        self.min_match_length = min_match_length
        self.cache_min_match_length = cache_min_match_length
        self.cache = ResponseCache(max_tree_depth, max_cached_requests, max_cached_tokens)
        self._local: RequestIndex | None = None
        self._matcher: Matcher | None = None  # the context in the cache (fixed per request)
        self._prompt_len = 0
        self._source = -1  # the cached output the last proposal came from (-1: this request)

    def start(self, prompt_ids: Sequence[int]) -> None:
        if self._local is not None:  # the previous request never reached finish()
            self.cache.add(self._local.tokens[self._prompt_len :])
        self._local = RequestIndex(self.max_tree_depth, self.min_match_length)
        self._local.extend(prompt_ids)
        self._prompt_len = len(self._local)
        self._matcher = self.cache.matcher()
        self._matcher.extend(self._local.tokens)
        self._source = -1

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        if self._local is None or len(context_ids) < len(self._local):
            self.start(())  # a new request that did not call start()
        local, matcher = self._local, self._matcher
        assert local is not None
        assert matcher is not None
        new = context_ids[len(local) :]  # the index holds the request's tokens seen so far
        if new:
            local.extend(new)
            matcher.extend(new)
        self._source = -1
        k = min(self.num_speculative_tokens, max_tokens)
        if k <= 0:
            return Proposal([])
        own = local.speculate(k, self.max_spec_factor, min_token_prob=self.min_token_prob)
        cached = self.cache.speculate_from(
            matcher, k, self.max_spec_factor, self.min_token_prob, self.cache_min_match_length
        )
        if cached.score > own.score:
            self._source = cached.seq
            return Proposal(cached.token_ids)
        return Proposal(own.token_ids)

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        if num_accepted > 0 and self._source >= 0:
            self.cache.touch(self._source)

    def finish(self, output_ids: Sequence[int]) -> None:
        """The request ended with ``output_ids``: cache them for the requests that follow."""
        self.cache.add(output_ids)
        self._local = None
        self._matcher = None
        self._prompt_len = 0


class ArcticSuffixProposer:
    """Suffix decoding on ``arctic_inference``'s C++ cache (the one vLLM's ``suffix`` uses).

    Its shared tree is bounded in requests only (FIFO), not in tokens; it grows with each
    request's output while the request runs, so a request also matches its own output there.
    """

    def __init__(
        self,
        num_speculative_tokens: int,
        *,
        max_tree_depth: int = 64,
        max_spec_factor: float = 2.0,
        min_token_prob: float = 0.1,
        max_cached_requests: int = 10000,
        min_match_length: int = 2,
    ) -> None:
        from arctic_inference.suffix_decoding import SuffixDecodingCache

        self.num_speculative_tokens = num_speculative_tokens
        self.max_tree_depth = max_tree_depth
        self.max_spec_factor = max_spec_factor
        self.min_token_prob = min_token_prob
        self.min_match_length = min_match_length
        self.cache: Any = SuffixDecodingCache(max_tree_depth, max_cached_requests)
        self._request = -1
        self._active = False
        self._seen = 0
        self._prompt_len = 0

    def start(self, prompt_ids: Sequence[int]) -> None:
        self._stop()
        self._request += 1
        self.cache.start_request(self._request, list(prompt_ids))
        self._active = True
        self._seen = self._prompt_len = len(prompt_ids)

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        if not self._active or len(context_ids) < self._seen:
            self.start(())
        if len(context_ids) > self._seen:
            self.cache.add_active_response(self._request, list(context_ids[self._seen :]))
            self._seen = len(context_ids)
        k = min(self.num_speculative_tokens, max_tokens)
        if k <= 0:
            return Proposal([])
        draft = self.cache.speculate(
            self._request,
            list(context_ids[-self.max_tree_depth :]),
            max_spec_tokens=k,
            max_spec_factor=self.max_spec_factor,
            min_token_prob=self.min_token_prob,
        )
        if draft.match_len < self.min_match_length:
            # arctic has no minimum match: its best draft continues a shorter match, so
            # none is proposed (a longer match's lower-scoring draft is not looked for)
            return Proposal([])
        return Proposal([int(t) for t in draft.token_ids])

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        """Arctic's cache learns from the committed tokens at the next propose()."""

    def finish(self, output_ids: Sequence[int]) -> None:
        if self._active:
            done = self._seen - self._prompt_len
            if len(output_ids) > done:
                self.cache.add_active_response(self._request, list(output_ids[done:]))
        self._stop()

    def _stop(self) -> None:
        if self._active:
            self.cache.stop_request(self._request)
            self._active = False


def arctic_available() -> bool:
    """Whether ``arctic_inference``'s suffix cache imports here (it ships as a C++ extension)."""
    try:
        from arctic_inference.suffix_decoding import SuffixDecodingCache  # noqa: F401
    except ImportError:
        return False
    return True
