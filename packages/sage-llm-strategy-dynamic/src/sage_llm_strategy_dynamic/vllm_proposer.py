"""dynamic-lookahead inside vLLM: a ``custom_class`` proposer with a per-request, per-step k.

vLLM's own knobs are static (``num_speculative_tokens`` and the batch-size table read at
start). With ``mode="adaptive"`` the strategy instead hands vLLM :class:`DynamicNgramProposer`:
vLLM instantiates it in each worker and calls :meth:`~DynamicNgramProposer.propose` every step
with the batch's committed tokens. For every request it runs the n-gram lookup of
``sage-llm-strategy-ngram`` ``max_tokens`` deep and truncates the draft to the ``k`` its own
:class:`~sage_llm_strategy_dynamic.controller.LookaheadController` chooses (the same
:class:`~sage_llm_strategy_dynamic.proposer.DynamicProposer` the reference engine runs), within
a cap that falls as the batch grows (:func:`~sage_llm_strategy_dynamic.controller.batch_cap`,
the table ``mode="static"`` gives vLLM): this is how speculation follows load inside one vLLM
engine, without a restart.

vLLM tells a proposer neither which drafted tokens were accepted nor which request a batch row
holds; both are read from the committed tokens:

* accepted: the previous draft of a row is compared with the tokens committed after it (vLLM
  commits the accepted prefix plus one token of its own, so the first difference is the
  rejection); positions beyond the truncation keep teaching the controller as shadow checks;
* identity: a row belongs to the same request while its committed tokens extend what was seen
  there (same first tokens, not shorter). A request that vLLM moved to another row is found by
  the same test among the states of rows it left; otherwise it starts a new controller. A
  wrong guess costs learning only, never output: vLLM verifies every draft against the target.

The parameters travel in the class name (vLLM builds the class from ``speculative_config
["model"]`` alone and zeroes the n-gram fields for ``custom_class``):
:func:`proposer_class_name` writes ``DynamicNgram_k<min_tokens>_n<lookup_min>_<lookup_max>``
(``max_tokens`` is vLLM's ``num_speculative_tokens``), and this
module's ``__getattr__`` builds that subclass when vLLM imports it in a worker, so the same
path works in a ``vllm serve`` command line. Nothing here imports vLLM.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sage.llm.proposing import VLLMProposer
from sage_llm_strategy_dynamic._deps import DEFAULT_LOOKUP_MIN, NgramProposer
from sage_llm_strategy_dynamic.controller import LookaheadController, batch_cap
from sage_llm_strategy_dynamic.proposer import DynamicProposer

FINGERPRINT: Final = 16
"""How many leading tokens identify a request's row (its prompt's start)."""

_NAME = re.compile(r"DynamicNgram_k(\d+)_n(\d+)_(\d+)")


@dataclass
class _Request:
    """One request's proposer, and what is needed to judge its previous draft."""

    proposer: DynamicProposer
    prefix: tuple[int, ...]
    length: int  # committed tokens when the last draft was made
    draft: list[int]  # the draft returned then (truncated to k)
    proposed: bool = False  # a draft (maybe empty) was asked for: the step after it is judged

    def follows(self, context: Sequence[int]) -> bool:
        """``context`` is this request's context, grown (or not) since the last step."""
        return len(context) >= self.length and tuple(context[: len(self.prefix)]) == self.prefix


def accepted_length(draft: Sequence[int], context: Sequence[int], start: int) -> int:
    """How many leading draft tokens equal what was committed at ``start`` onward."""
    accepted = 0
    for token, committed in zip(draft, context[start:], strict=False):
        if token != committed:
            break
        accepted += 1
    return accepted


class DynamicNgramProposer(VLLMProposer):
    """n-gram drafts for vLLM, each request's truncated to its own controller's k.

    Class attributes hold the strategy's parameters; :func:`proposer_class_name` names a
    subclass with other values. ``max_tokens`` is vLLM's ``num_speculative_tokens``.
    """

    min_tokens: int = 0
    lookup_min: int = DEFAULT_LOOKUP_MIN
    lookup_max: int = 4

    def __init__(self, vllm_config: Any) -> None:
        super().__init__(vllm_config)
        self.max_tokens = self.num_speculative_tokens
        self._rows: dict[int, _Request] = {}
        self.clock: Callable[[], float] = time.perf_counter
        """Step times for the controllers' cost model (a test passes a simulated clock)."""
        self.draft_lengths: Counter[int] = Counter()
        """How many drafts of each length this proposer returned for decoding rows (0: none)."""
        self.cap: int | None = None
        """The deepest k the last step allowed, from its batch size (``batch_cap``)."""
        self.learned_accepted = 0
        """Draft tokens found accepted in the committed tokens (a request's last draft, whose
        verdict arrives after it finished, is never seen)."""

    def new_request(self, context: Sequence[int]) -> _Request:
        controller = LookaheadController(min(self.min_tokens, self.max_tokens), self.max_tokens)
        ngram = NgramProposer(self.max_tokens, max_n=self.lookup_max, min_n=self.lookup_min)
        proposer = DynamicProposer(ngram, controller, cheap=True, clock=self.clock)
        proposer.start(context)
        return _Request(proposer, tuple(context[:FINGERPRINT]), len(context), [])

    def propose(
        self,
        sampled_token_ids: Sequence[Sequence[int]],
        num_tokens_no_spec: Any,
        token_ids_cpu: Any,
        slot_mappings: Any = None,
        **kwargs: Any,
    ) -> list[list[int]]:
        """One draft per row, in batch order; ``[]`` for a row that is not decoding."""
        old = self._rows
        rows: dict[int, _Request] = {}
        contexts = {
            i: self.committed_tokens(token_ids_cpu, num_tokens_no_spec, i)
            for i in range(len(sampled_token_ids))
        }
        # Rows whose request stayed put keep their state; the rest look among the leftovers.
        for i, context in contexts.items():
            request = old.get(i)
            if request is not None and request.follows(context):
                rows[i] = old.pop(i)
        for i, context in contexts.items():
            if i in rows:
                continue
            moved = next((j for j, r in old.items() if r.follows(context)), None)
            rows[i] = old.pop(moved) if moved is not None else self.new_request(context)
        # The busier the batch, the less idle compute rejected drafts can use: every
        # request's k is capped by the batch-size table (the same table as mode="static").
        decoding = sum(1 for sampled in sampled_token_ids if sampled)
        self.cap = batch_cap(decoding, self.min_tokens, self.max_tokens) if decoding else None
        drafts: list[list[int]] = []
        for i, sampled in enumerate(sampled_token_ids):
            if not sampled:
                drafts.append([])
                continue
            rows[i].proposer.set_max_tokens_cap(self.cap)
            drafts.append(self.propose_for(rows[i], contexts[i]))
        self._rows = rows
        return drafts

    def propose_for(self, request: _Request, context: Sequence[int]) -> list[int]:
        """Judge the request's previous draft from its commits, then draft up to its k."""
        proposer = request.proposer
        if request.proposed:
            accepted = accepted_length(request.draft, context, request.length)
            proposer.on_verified(len(request.draft), accepted)
            self.learned_accepted += accepted
        draft = [int(t) for t in proposer.propose(context, self.max_tokens).token_ids]
        request.length = len(context)
        request.draft = draft
        request.proposed = True
        self.draft_lengths[len(draft)] += 1
        return draft

    def chosen_k(self) -> dict[int, list[int]]:
        """The k chosen per step, by batch row, of the requests in the batch (for tests)."""
        return {i: list(r.proposer.chosen) for i, r in self._rows.items()}


def proposer_class_name(min_tokens: int, lookup_min: int, lookup_max: int) -> str:
    """The dotted path vLLM loads for these parameters (see the module docstring)."""
    return f"{__name__}.DynamicNgram_k{min_tokens}_n{lookup_min}_{lookup_max}"


def __getattr__(name: str) -> type[DynamicNgramProposer]:
    """Build the subclass a :func:`proposer_class_name` path names, once per process."""
    match = _NAME.fullmatch(name)
    if match is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    min_tokens, lookup_min, lookup_max = (int(g) for g in match.groups())
    if not 1 <= lookup_min <= lookup_max:
        raise AttributeError(f"{name}: needs 1 <= lookup_min <= lookup_max.")
    cls = type(
        name,
        (DynamicNgramProposer,),
        {
            "__module__": __name__,
            "__qualname__": name,
            "min_tokens": min_tokens,
            "lookup_min": lookup_min,
            "lookup_max": lookup_max,
        },
    )
    globals()[name] = cls
    return cls
