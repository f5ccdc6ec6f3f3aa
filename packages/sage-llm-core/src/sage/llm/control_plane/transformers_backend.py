"""The reference engine under the control plane: one worker thread, one request at a time.

:class:`~sage.llm.engines.transformers.TransformersEngine` decodes a single sequence, so the
engine serves its queue in order on one thread. Speculation is switched per request (the
proposer is an argument of ``generate``), which lets the policy decide before every request
at no cost; outputs are the same either way because the engine is lossless.

Options (``start_engine(..., **options)``): ``device``, ``dtype``, ``weight_layout``,
``trust_remote_code``, ``gguf_file`` go to ``TransformersEngine.from_pretrained``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from sage.llm.control_plane.backend import EngineBackend, Interrupted, WorkerContext
from sage.llm.control_plane.errors import InvalidRequestError
from sage.llm.control_plane.faults import is_engine_fatal, request_error
from sage.llm.control_plane.requests import Completion
from sage.llm.control_plane.states import Capabilities
from sage.llm.control_plane.validation import check_context, check_token_ids, request_token_ids

if TYPE_CHECKING:
    from sage.llm.control_plane.policies import Decision
    from sage.llm.control_plane.requests import GenerationRequest, RequestHandle
    from sage.llm.engines.transformers.engine import TransformersEngine
    from sage.llm.strategy import SpeculativeStrategy

LOAD_OPTIONS = ("device", "dtype", "weight_layout", "trust_remote_code", "gguf_file")
FINISH_REASONS = {"eos": "stop", "stop": "stop", "length": "length"}


class TransformersBackend(EngineBackend):
    kind = "transformers"
    capabilities: ClassVar[Capabilities] = Capabilities(
        batching=False,
        switch_per_request=True,
        switch_k_per_request=True,
        note="single-stream: requests run one at a time; speculation and k switch per request",
    )

    def __init__(
        self,
        model_id: str,
        strategy: SpeculativeStrategy | None,
        options: dict[str, Any],
        speculate_at_start: bool = True,
    ) -> None:
        unknown = sorted(set(options) - set(LOAD_OPTIONS))
        if unknown:
            raise InvalidRequestError(
                f"the transformers engine does not take option(s) {', '.join(unknown)}; "
                f"it takes {', '.join(LOAD_OPTIONS)}."
            )
        super().__init__(model_id, strategy, options, speculate_at_start)
        self.engine: TransformersEngine | None = None

    def load(self) -> None:
        from sage.llm.engines.transformers import TransformersEngine
        from sage.llm.engines.transformers.engine import require_proposer

        if self.strategy is not None:
            require_proposer(self.strategy)  # before the model is loaded, not after
        self.engine = self.build_engine(TransformersEngine)
        if self.strategy is not None:
            # Fail at start, not on the first request, if the strategy cannot run here.
            from sage.llm.engines.transformers.sampling import SamplingParams

            self.engine.make_proposer(self.strategy, SamplingParams(0.0, None, None))

    def build_engine(self, engine_class: type[TransformersEngine]) -> TransformersEngine:
        """Load the model (a seam for tests and for callers that hold a loaded model)."""
        return engine_class.from_pretrained(self.model_id, **self.options)

    def close(self) -> None:
        self.engine = None

    def run(self, ctx: WorkerContext) -> None:
        while (handle := ctx.next_request()) is not None:
            self.serve_one(ctx, handle, ctx.decide(running=1))

    def strategy_for(self, decision: Decision) -> SpeculativeStrategy | None:
        """The strategy to run under ``decision`` (with its k when the policy sets one)."""
        if not decision.speculate or self.strategy is None:
            return None
        k = decision.num_speculative_tokens
        if k is not None:  # the strategy's with_num_speculative_tokens hook, when it has one
            changed = self.strategy.with_num_speculative_tokens(k)
            if changed is not None:
                return changed
        return self.strategy

    def prompt_ids(self, request: GenerationRequest) -> list[int]:
        engine = self.engine
        assert engine is not None
        return request_token_ids(engine.tokenizer, request, engine.name)

    def check_request(self, request: GenerationRequest) -> list[int] | None:
        """Tokenize (template included), then ids within the embedding table and prompt plus
        ``max_tokens`` within ``max_position_embeddings``, as ``generate`` would need."""
        if self.engine is None:  # closed while the caller checked: the queue refuses it next
            return None
        return self.checked_ids(request)

    def checked_ids(self, request: GenerationRequest) -> list[int]:
        engine = self.engine
        assert engine is not None
        ids = self.prompt_ids(request)
        param = "prompt" if request.messages is None else "messages"
        check_token_ids(ids, input_vocab_size(engine.model), param)
        check_context(len(ids), request.max_tokens, self.max_model_len(), param)
        return ids

    def serve_one(self, ctx: WorkerContext, handle: RequestHandle, decision: Decision) -> None:
        engine = self.engine
        assert engine is not None
        request = handle.request
        strategy = self.strategy_for(decision)

        def on_text(delta: str) -> None:
            error = ctx.interrupted(handle)
            if error is not None:
                raise Interrupted(error)
            handle.emit(delta)

        start = time.monotonic()
        try:
            ids = handle.prompt_ids or self.checked_ids(request)
            result = engine.generate(
                ids,
                strategy=strategy,
                max_tokens=request.max_tokens,
                temperature=sampling_temperature(request.temperature),
                top_k=request.top_k,
                top_p=request.top_p,
                seed=request.seed,
                stop=list(request.stop),
                on_text=on_text,
            )
        except Interrupted as stop:
            ctx.fail_request(handle, stop.error)
            return
        except Exception as exc:  # this request's failure, unless the engine itself broke
            if is_engine_fatal(exc):
                raise
            ctx.fail_request(handle, request_error(handle, exc))
            return
        now = time.monotonic()
        completion = Completion(
            request_id=handle.id,
            engine_id=ctx.engine_id,
            model=ctx.model_name,
            text=result.text,
            token_ids=list(result.token_ids),
            prompt_tokens=len(result.prompt_token_ids),
            finish_reason=FINISH_REASONS.get(result.finish_reason, result.finish_reason),
            speculative=strategy is not None,
            strategy=strategy.to_string() if strategy is not None else "none",
            metrics=result.metrics,
            queued_s=start - handle.submitted_at,
            ttft_s=(handle.first_text_at - handle.submitted_at) if handle.first_text_at else None,
            latency_s=now - handle.submitted_at,
        )
        ctx.complete(handle, completion, now - start)

    def describe(self) -> dict[str, Any]:
        engine = self.engine
        return {"device": str(engine.device)} if engine is not None else {}

    def hf_tokenizer(self) -> Any:
        return self.engine.tokenizer if self.engine is not None else None

    def max_model_len(self) -> int | None:
        """The model's ``max_position_embeddings``: the engine refuses longer sequences."""
        config = getattr(getattr(self.engine, "model", None), "config", None)
        limit = getattr(config, "max_position_embeddings", None)
        return int(limit) if isinstance(limit, int) else None


GREEDY_BELOW = 1e-5
"""Temperatures under this decode greedily, as in vLLM (its ``_SAMPLING_EPS``): dividing the
logits by 1e-320 overflows them to infinities, whose softmax is NaN, and the sampler fails."""


def sampling_temperature(temperature: float) -> float:
    return 0.0 if temperature < GREEDY_BELOW else temperature


def input_vocab_size(model: Any) -> int:
    """Rows of the model's input embedding: the token ids it can read."""
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    rows = getattr(embeddings, "num_embeddings", None)
    return int(rows) if isinstance(rows, int) else int(model.config.vocab_size)
