"""dynamic-lookahead inside vLLM: a ``custom_class`` proposer with a per-request, per-step k.

vLLM's own knobs are static (``num_speculative_tokens`` and the batch-size table read at
start). With ``mode="adaptive"`` the strategy instead hands vLLM :class:`DynamicNgramProposer`:
vLLM instantiates it in each worker and calls :meth:`~DynamicNgramProposer.propose` every step
with the batch's committed tokens. For every request it runs the n-gram lookup of
``sage-llm-strategy-ngram`` ``max_tokens`` deep and truncates the draft to the ``k`` its own
:class:`~sage_llm_strategy_dynamic.controller.LookaheadController` chooses (the same
:class:`~sage_llm_strategy_dynamic.proposer.DynamicProposer` the reference engine runs). Every
step a :class:`~sage_llm_strategy_dynamic.load_gate.LoadGate` decides whether the batch
speculates at all, from the tokens per second it measured with and without speculation at
this batch size: this is how speculation follows load inside one vLLM engine, without a
restart, at the switch point this machine, model and traffic have.

vLLM tells a proposer neither which drafted tokens were accepted nor which request a batch row
holds; both are read from the committed tokens:

* accepted: the previous draft of a row is compared with the tokens committed after it (vLLM
  commits the accepted prefix plus one token of its own, so the first difference is the
  rejection); positions beyond the truncation keep teaching the controller as shadow checks;
* identity: a row belongs to the same request while its committed tokens extend, token for
  token, what was seen there at the previous step. A request that vLLM moved to another row is
  found by the same test among the states of rows it left; otherwise it starts a new controller
  and a new lookup index. Comparing only the first 16 tokens was not enough: chat requests
  start with the same system prompt, so a new request that took a finished one's row was taken
  for it, and its drafts were looked up in the old request's index (22% of drafted tokens
  accepted on the load benchmark's prompts, against 56% for vLLM's own n-gram method on the
  same prompts). A wrong guess costs speed only, never output: vLLM verifies every draft.

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
from typing import Any

from sage.llm.proposing import VLLMProposer
from sage_llm_strategy_dynamic._deps import DEFAULT_LOOKUP_MIN, NgramProposer
from sage_llm_strategy_dynamic.controller import LookaheadController
from sage_llm_strategy_dynamic.load_gate import LoadGate
from sage_llm_strategy_dynamic.proposer import DynamicProposer

_NAME = re.compile(r"DynamicNgram_k(\d+)_n(\d+)_(\d+)")


@dataclass
class _Request:
    """One request's proposer, and what is needed to judge its previous draft."""

    proposer: DynamicProposer
    seen: list[int]  # the committed tokens at the last step
    draft: list[int]  # the draft returned then (truncated to k)
    proposed: bool = False  # a draft (maybe empty) was asked for: the step after it is judged

    @property
    def length(self) -> int:
        """Committed tokens when the last draft was made."""
        return len(self.seen)

    def follows(self, context: list[int]) -> bool:
        """``context`` is this request's context, grown (or not) since the last step."""
        return len(context) >= len(self.seen) and context[: len(self.seen)] == self.seen


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
        self.gate = LoadGate()
        """Whether each step's batch speculates, from measured throughput by batch size."""
        self.learned_accepted = 0
        """Draft tokens found accepted in the committed tokens (a request's last draft, whose
        verdict arrives after it finished, is never seen)."""
        self._last_call: float | None = None
        self._last_all_decoding = False
        self._drafted = False  # the step now running verifies a draft

    def new_request(self, context: Sequence[int]) -> _Request:
        controller = LookaheadController(min(self.min_tokens, self.max_tokens), self.max_tokens)
        ngram = NgramProposer(self.max_tokens, max_n=self.lookup_max, min_n=self.lookup_min)
        proposer = DynamicProposer(ngram, controller, cheap=True, clock=self.clock)
        proposer.start(context)
        return _Request(proposer, list(context), [])

    def propose(
        self,
        sampled_token_ids: Sequence[Sequence[int]],
        num_tokens_no_spec: Any,
        token_ids_cpu: Any,
        slot_mappings: Any = None,
        **kwargs: Any,
    ) -> list[list[int]]:
        """One draft per row, in batch order; ``[]`` for a row that is not decoding."""
        now = self.clock()
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
        joined = 0
        for i, context in contexts.items():
            if i in rows:
                continue
            moved = next((j for j, r in old.items() if r.follows(context)), None)
            if moved is None:
                joined += 1
            rows[i] = old.pop(moved) if moved is not None else self.new_request(context)
        decoding = sum(1 for sampled in sampled_token_ids if sampled)
        all_decoding = decoding == len(sampled_token_ids)
        # The step that just ran: judged only if it was decoding alone (a prompt's prefill
        # costs the same either way and would hide the difference between the modes).
        if self._last_call is not None and not joined and all_decoding and self._last_all_decoding:
            committed = sum(len(contexts[i]) - rows[i].length for i in rows)
            self.gate.observe(decoding, committed, now - self._last_call, self._drafted)
        self._last_call, self._last_all_decoding = now, all_decoding
        speculate = self.gate.decide(decoding) if decoding else False
        drafts: list[list[int]] = []
        for i, sampled in enumerate(sampled_token_ids):
            if not sampled:
                drafts.append([])
                continue
            drafts.append(self.propose_for(rows[i], contexts[i], speculate))
        self._rows = rows
        self._drafted = any(drafts)
        return drafts

    def propose_for(
        self, request: _Request, context: Sequence[int], speculate: bool = True
    ) -> list[int]:
        """Judge the request's previous draft from its commits, then draft up to its k (or
        nothing, where the gate keeps this step plain)."""
        proposer = request.proposer
        if request.proposed:
            accepted = accepted_length(request.draft, context, request.length)
            proposer.on_verified(len(request.draft), accepted)
            self.learned_accepted += accepted
        if speculate:
            draft = [int(t) for t in proposer.propose(context, self.max_tokens).token_ids]
        else:
            draft = []
            proposer.pause()
        request.seen = list(context)
        request.draft = draft
        request.proposed = speculate
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
