"""The ``dynamic-lookahead`` strategy: k chosen every step between min_tokens and max_tokens.

On the reference engine each request's proposer (n-gram lookup, or the draft model with
``draft_model_id``) is driven by :class:`~sage_llm_strategy_dynamic.controller.
LookaheadController`: each step it proposes the ``k`` in ``[min_tokens, max_tokens]`` with the
most expected tokens per second, from the acceptance it observed and the step times it measured
(``min_tokens=0`` lets it switch speculation off and back on).

On vLLM, ``mode`` picks between two configurations (vLLM itself has no per-step k):

* ``"adaptive"`` (default): ``method="custom_class"`` with
  :class:`~sage_llm_strategy_dynamic.vllm_proposer.DynamicNgramProposer`, which runs the same
  n-gram lookup and controller per request inside vLLM's workers and truncates each request's
  draft to its controller's ``k`` every step, and switches the whole batch's speculation on or
  off by the throughput it measured with and without it at that batch size
  (:mod:`~sage_llm_strategy_dynamic.load_gate`) (n-gram only: with ``draft_model_id`` choose
  ``"static"``);
* ``"static"``: vLLM's own ``ngram`` (or ``draft_model``) method with ``num_speculative_tokens
  = max_tokens`` plus vLLM's per-batch-size table, which speculates ``max_tokens`` deep for small
  batches and shrinks toward ``min_tokens`` (0 switches speculation off) as batches grow,
  because a busy engine has less idle compute to spend on rejected drafts.

The reference engine ignores ``mode``: it always chooses k per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from sage.llm import InvalidParameterError, SpeculativeStrategy, param
from sage_llm_strategy_dynamic.controller import batch_size_schedule
from sage_llm_strategy_ngram import DEFAULT_LOOKUP_MIN

if TYPE_CHECKING:
    from sage.llm.proposing import Proposer, ProposerContext

DEFAULT_CONFIDENCE_THRESHOLD = 0.0
"""No per-token stop by default: the cumulative stop (``cumulative_confidence_threshold``)
replaced it. A per-token stop ends a draft at the first unsure token even inside a long run
the target accepts whole: with the 1.5B target and the 0.5B draft, a math answer whose draft
matched 25 tokens in a row was drafted in steps of 2-3 tokens at a stop of 0.8, the default
before. On the replay of 60 draft traces (docs/notes/dynamic-lookahead-tuning.md) the cumulative
stop with a per-token stop of 0.5 on top changed nothing (1.063x of plain overall either way), one
of 0.8 lost math_reasoning 3% (1.135x against 1.168x). Before the cumulative stop, 0.8 was the best
per-token value (fixed k=8 with a stop at 0.4 / 0.7 / 0.8 / 0.9: 0.90x / 0.98x / 0.97x /
0.94x of plain decoding); transformers' default ``assistant_confidence_threshold`` is 0.4."""


@dataclass(frozen=True, kw_only=True)
class DynamicLookaheadStrategy(SpeculativeStrategy):
    """Speculation depth between min_tokens and max_tokens, chosen differently per engine.

    Reference engine (transformers): chosen every step of every request by an expected-gain
    controller, from the acceptance it observed and the step times it measured; min_tokens=0
    lets it switch speculation off and back on. vLLM, mode="adaptive" (default): the same,
    per request and per step, for n-gram lookup, through a custom_class proposer that truncates
    each request's draft to its controller's k and switches speculation per step by measured
    throughput at the batch size. vLLM, mode="static": vLLM's ngram or
    draft_model method, k = max_tokens for batches of 1-4, halved per 4x larger batch band down
    to min_tokens (vLLM's batch-size table, read once at start).
    """

    name: ClassVar[str] = "dynamic-lookahead"

    min_tokens: int = param(
        0,
        doc="Fewest tokens proposed per step while speculating; 0 (the default, chosen by the "
        "replay benchmark) lets speculation switch off where it does not pay.",
        ge=0,
        le=64,
    )
    max_tokens: int = param(10, doc="Most tokens proposed per step.", ge=1, le=64)
    draft_model_id: str | None = param(
        None, doc="Draft model to propose with; unset uses n-gram prompt lookup.", draft_model=True
    )
    prompt_lookup_max: int = param(4, doc="Longest n-gram matched (n-gram mode).", ge=1, le=64)
    prompt_lookup_min: int | None = param(
        None,
        doc="Shortest n-gram matched (n-gram mode; default: "
        f"min({DEFAULT_LOOKUP_MIN}, prompt_lookup_max)).",
        ge=1,
        le=64,
    )
    confidence_threshold: float = param(
        DEFAULT_CONFIDENCE_THRESHOLD,
        doc="Draft mode, reference engine: stop drafting after a token the draft gives less "
        "than this probability (0 never stops early).",
        ge=0.0,
        le=1.0,
    )
    cumulative_confidence_threshold: float | None = param(
        None,
        doc="Draft mode, reference engine: stop drafting once the draft's probability that "
        "every token drafted this step is accepted (the product of its probabilities) falls "
        "below this. Unset (the default): the measured break-even of one more drafted token "
        "(its drafting time and verify position over a plain step), set every step; the "
        "draft then runs as deep as max_tokens while this stop decides. 0 turns it off.",
        ge=0.0,
        le=1.0,
    )
    target_confidence: bool = param(
        True,
        doc="Draft mode, reference engine: switch the draft on and off by the target's "
        "confidence in the tokens it commits (reported by the engine for free), instead of "
        "by priced probes of the draft alone.",
    )

    mode: str = param(
        "adaptive",
        doc="vLLM only (the reference engine always adapts per step): 'adaptive' chooses k per "
        "request and step inside vLLM (custom_class proposer, n-gram lookup only); 'static' "
        "uses vLLM's ngram/draft_model method and its batch-size table "
        "(num_speculative_tokens_per_batch_size), the only choice with draft_model_id.",
        choices=("adaptive", "static"),
    )

    @property
    def lookup_min(self) -> int:
        """``prompt_lookup_min``, or the ngram strategy's default capped at prompt_lookup_max."""
        if self.prompt_lookup_min is not None:
            return self.prompt_lookup_min
        return min(DEFAULT_LOOKUP_MIN, self.prompt_lookup_max)

    def validate(self) -> None:
        if self.min_tokens > self.max_tokens:
            raise InvalidParameterError(
                self.name,
                f"min_tokens ({self.min_tokens}) must be <= max_tokens ({self.max_tokens}).",
                "min_tokens",
            )
        if self.prompt_lookup_min is not None and self.prompt_lookup_min > self.prompt_lookup_max:
            raise InvalidParameterError(
                self.name,
                f"prompt_lookup_min ({self.prompt_lookup_min}) must be <= prompt_lookup_max "
                f"({self.prompt_lookup_max}).",
                "prompt_lookup_min",
            )
        if self.draft_model_id is not None and not self.draft_model_id.strip():
            raise InvalidParameterError(
                self.name, "draft_model_id must be a model name or be left unset.", "draft_model_id"
            )

    def batch_size_schedule(self) -> list[list[int]]:
        """vLLM's ``num_speculative_tokens_per_batch_size`` rows ``[first, last, k]`` (see
        :func:`~sage_llm_strategy_dynamic.controller.batch_size_schedule`)."""
        return batch_size_schedule(self.min_tokens, self.max_tokens)

    def apply(self, engine_config: dict[str, Any]) -> None:
        if self.mode == "adaptive":
            if self.draft_model_id is not None:
                raise InvalidParameterError(
                    self.name,
                    "mode='adaptive' on vLLM proposes by n-gram lookup only; with "
                    "draft_model_id pass mode='static' (vLLM's draft_model method and its "
                    "batch-size table).",
                    "mode",
                )
            self.speculative_config(engine_config).update(
                method="custom_class", num_speculative_tokens=self.max_tokens
            )
            return
        config: dict[str, Any] = {"num_speculative_tokens": self.max_tokens}
        if self.draft_model_id is None:
            config.update(
                method="ngram",
                prompt_lookup_max=self.prompt_lookup_max,
                prompt_lookup_min=self.lookup_min,
            )
        else:
            self.require_vllm_at_least("0.14.0", feature="draft-model speculation")
            config.update(method="draft_model", model=self.draft_model_id)
        config["num_speculative_tokens_per_batch_size"] = self.batch_size_schedule()
        self.speculative_config(engine_config).update(config)

    def vllm_proposer_class(self) -> str | None:
        """mode="adaptive": the path of the per-request adaptive n-gram proposer vLLM loads."""
        if self.mode != "adaptive" or self.draft_model_id is not None:
            return None
        from sage_llm_strategy_dynamic.vllm_proposer import proposer_class_name

        return proposer_class_name(self.min_tokens, self.lookup_min, self.prompt_lookup_max)

    def make_proposer(self, context: ProposerContext) -> Proposer:
        """The inner proposer under a :class:`LookaheadController` (see the module docstring)."""
        from sage_llm_strategy_dynamic.proposer import build_proposer

        return build_proposer(self, context)

    def wrap_proposer(self, inner: Proposer, *, cheap: bool = False) -> Proposer:
        """This strategy's controller (``min_tokens``, ``max_tokens``) around any proposer.

        For a proposer that is not ``cheap`` (a model: drafting costs time per token) the
        controller applies the model-draft margin and probes while off; a proposer with an
        early stop (``confidence_threshold`` and ``cumulative_confidence_threshold``
        attributes, as the draft model's: a ``sage.llm.proposing.EarlyStoppingProposer``) gets
        the strategy's thresholds, exactly as with ``draft_model_id``. ``cheap=True`` is for
        lookups (see :func:`~sage_llm_strategy_dynamic.proposer.wrap`). The replay of recorded
        draft traces runs the strategy this way around its replayed draft.
        """
        from sage_llm_strategy_dynamic._deps import EarlyStoppingProposer
        from sage_llm_strategy_dynamic.proposer import wrap

        stops_early = not cheap and isinstance(inner, EarlyStoppingProposer)
        return wrap(
            inner,
            self.min_tokens,
            self.max_tokens,
            cheap=cheap,
            confidence_threshold=self.confidence_threshold if stops_early else 0.0,
            # DynamicProposer checks the proposer: a threshold it cannot honour is an error
            cumulative_confidence_threshold=self.cumulative_confidence_threshold,
            listens=self.target_confidence,
        )

    def transformers_peer(self) -> dict[str, Any]:
        """What transformers offers a user who does not want to pick ``k``: with a draft model,
        assisted generation at its own defaults (its schedule and confidence stop); for n-gram
        lookup, which has no schedule there, prompt lookup at the same largest ``k`` and
        n-gram."""
        if self.draft_model_id is not None:
            return {"assistant_model": self.draft_model_id}
        return {
            "prompt_lookup_num_tokens": self.max_tokens,
            "max_matching_ngram_size": self.prompt_lookup_max,
        }
