"""vLLM under the control plane: continuous batching over vLLM's ``LLMEngine``.

One worker thread owns the engine: it admits every queued request (``add_request``), runs
``step()`` and hands each request's new text to its handle, so requests join and leave the
batch at every step, as in vLLM's own server. Cancellation and timeouts become
``abort_request``.

What vLLM supports for switching: speculation is part of the engine's configuration, so it
cannot be turned on or off per request without a restart. The policy therefore decides once
at start (``never`` starts without speculation), and ``adaptive`` hands the load rule to vLLM
itself (:func:`~sage.llm.engines.vllm.config.add_load_switch`: ``disable_by_batch_size`` =
the policy's ``max_batch``, or vLLM's per-batch-size k table with k = 0 from ``max_batch``).
The dynamic strategy's ``custom_class`` proposer does better: it sees the batch every step
and switches speculation by the throughput it measured at that batch size (see
docs/control-plane.md).

Options (``start_engine(..., engine="vllm", **options)``): ``tensor_parallel_size``,
``pipeline_parallel_size``, ``max_model_len``, ``dtype``, ``seed``, ``revision``,
``auto_download`` go to :class:`~sage.llm.engines.vllm.service.VLLMServiceConfig`; every other
option is a ``vllm.LLM`` argument (``distributed_executor_backend="ray"``,
``kv_cache_memory_bytes``, ``gpu_memory_utilization`` ...), passed through untouched.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from sage.llm.control_plane.backend import EngineBackend, WorkerContext
from sage.llm.control_plane.faults import is_engine_fatal, request_error
from sage.llm.control_plane.requests import Completion
from sage.llm.control_plane.states import Capabilities
from sage.llm.control_plane.validation import check_context, check_token_ids, request_token_ids
from sage.llm.engines.vllm.config import add_load_switch
from sage.llm.engines.vllm.cpu import with_cpu_defaults
from sage.llm.metrics import SpecDecodeMetrics

if TYPE_CHECKING:
    from sage.llm.control_plane.requests import GenerationRequest, RequestHandle

CONFIG_FIELDS = (
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "max_model_len",
    "dtype",
    "seed",
    "revision",
    "auto_download",
)


@dataclass
class _Live:
    handle: RequestHandle
    started: float
    text: str = ""
    token_ids: list[int] = field(default_factory=list)


class VLLMBackend(EngineBackend):
    kind = "vllm"
    capabilities: ClassVar[Capabilities] = Capabilities(
        batching=True,
        switch_per_request=False,
        switch_k_per_request=False,
        note="continuous batching; speculation is configured at start: vLLM can switch it "
        "off from a batch size, and a custom_class proposer (dynamic-lookahead) switches it "
        "per step by the throughput it measured at each batch size and adapts k per request",
    )
    max_batch_for_speculation: int | None = None
    metrics_name: str | None = None
    """The ``served_model_name`` whose series of vLLM's process-wide counters are this engine's
    (set by :meth:`engine_args`; ``None``: every series)."""

    def engine_args(self) -> dict[str, Any]:
        """The exact ``vllm.LLM`` arguments: options passed through, the strategy's part, the
        CPU memory defaults and, under ``adaptive``, vLLM's own batch-size switch. Resolves
        the model and runs the project's checks; starts nothing."""
        from sage.llm.engines.vllm.service import VLLMService, VLLMServiceConfig

        config_kw = {k: v for k, v in self.options.items() if k in CONFIG_FIELDS}
        engine_args = {k: v for k, v in self.options.items() if k not in CONFIG_FIELDS}
        # vLLM's counters are process-wide; a name of its own labels this engine's series.
        engine_args.setdefault("served_model_name", f"sage-llm-{uuid.uuid4().hex[:12]}")
        served = engine_args["served_model_name"]
        self.metrics_name = str(served[0] if isinstance(served, list | tuple) else served)
        strategy = self.strategy if self.speculate_at_start else None
        self._strategy_label = strategy.to_string() if strategy is not None else "none"
        config = VLLMServiceConfig(
            model_id=self.model_id,
            speculative_strategy=strategy,
            engine_args=engine_args,
            **config_kw,
        )
        self.service = VLLMService(config)
        # the same memory/eager defaults as VLLMService.setup()
        args = with_cpu_defaults(self.service.prepare_engine_args())
        spec = args.get("speculative_config")
        if spec is not None and self.max_batch_for_speculation:
            add_load_switch(spec, self.max_batch_for_speculation)
        self.service.engine_args = args
        return args

    def load(self) -> None:
        args = self.engine_args()
        from vllm import LLM

        self.service._llm = LLM(**args)  # the checked arguments, with the load switch added
        self.llm = self.service.llm
        self.engine = self.llm.llm_engine
        self.tokenizer = self.llm.get_tokenizer()
        config = self.engine.model_config
        # vLLM's own rule (its renderer's validate_token_ids): an id is in the vocabulary when
        # the tokenizer or the model knows it.
        tokenizer_ids = int(getattr(self.tokenizer, "max_token_id", -1)) + 1
        self.vocab_size = max(tokenizer_ids, int(config.get_vocab_size()))

    def close(self) -> None:
        service = getattr(self, "service", None)
        if service is not None:
            service.shutdown()

    def sampling_params(self, request: GenerationRequest) -> Any:
        from vllm import SamplingParams

        kw: dict[str, Any] = {
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p if request.top_p is not None else 1.0,
            "stop": list(request.stop) or None,
        }
        if request.top_k is not None and request.top_k < getattr(self, "vocab_size", 2**31):
            kw["top_k"] = request.top_k  # a larger k keeps every token: the same as none
        if request.seed is not None:
            kw["seed"] = request.seed
        return SamplingParams(**kw)

    def prompt(self, request: GenerationRequest) -> Any:
        """Token ids tokenized exactly as the reference engine does (completions: the text as
        is; chat: the model's template), so vLLM sees the same ids."""
        return {"prompt_token_ids": self.checked_ids(request)}

    def check_request(self, request: GenerationRequest) -> list[int] | None:
        """Tokenize, then ids within vLLM's vocabulary and prompt plus ``max_tokens`` within
        ``max_model_len`` (vLLM's own server refuses the same with a 400)."""
        if getattr(self, "tokenizer", None) is None:
            return None
        return self.checked_ids(request)

    def checked_ids(self, request: GenerationRequest) -> list[int]:
        ids = request_token_ids(self.tokenizer, request, self.model_id)
        param = "prompt" if request.messages is None else "messages"
        vocab = getattr(self, "vocab_size", None)
        if vocab is not None:
            check_token_ids(ids, vocab, param)
        check_context(len(ids), request.max_tokens, self.max_model_len(), param)
        return ids

    def run(self, ctx: WorkerContext) -> None:
        from sage.llm.engines.vllm.metrics import read_metrics, snapshot, spec_decode_delta

        live: dict[str, _Live] = {}
        batch = 0
        counters = snapshot(read_metrics(self.llm), self.metrics_name)
        while True:
            handle = ctx.next_request(block=not live)
            while handle is not None:
                try:
                    ids = handle.prompt_ids  # tokenized and checked at submission
                    prompt = (
                        self.prompt(handle.request) if ids is None else {"prompt_token_ids": ids}
                    )
                    self.engine.add_request(handle.id, prompt, self.sampling_params(handle.request))
                    live[handle.id] = _Live(handle, time.monotonic())
                except Exception as exc:  # this request's failure, unless vLLM itself broke
                    if is_engine_fatal(exc):
                        raise
                    ctx.fail_request(handle, request_error(handle, exc))
                handle = ctx.next_request(block=False)
            if not live:
                return  # next_request returned None with nothing running: stopping
            for rid, running in list(live.items()):
                error = ctx.interrupted(running.handle)
                if error is not None:
                    self.engine.abort_request([rid])
                    del live[rid]
                    ctx.fail_request(running.handle, error)
            if not live:
                continue
            if len(live) != batch:  # recorded for observers; vLLM applies its own switch
                batch = len(live)
                ctx.decide(running=batch)
            finished: list[tuple[_Live, Any]] = []
            for output in self.engine.step():
                item = live.get(output.request_id)
                if item is None:
                    continue
                out = output.outputs[0]
                item.handle.emit(out.text[len(item.text) :])
                item.text = out.text
                item.token_ids = list(out.token_ids)
                if output.finished:
                    del live[output.request_id]
                    finished.append((item, output))
            if finished:
                now_counters = snapshot(read_metrics(self.llm), self.metrics_name)
                shared = spec_decode_delta(
                    counters, now_counters, num_generated_tokens=0, wall_time_s=0
                )
                counters = now_counters
                for i, (item, output) in enumerate(finished):
                    self._complete(ctx, item, output, shared if i == 0 else SpecDecodeMetrics())

    def _complete(
        self, ctx: WorkerContext, item: _Live, output: Any, spec: SpecDecodeMetrics
    ) -> None:
        now = time.monotonic()
        handle = item.handle
        spec.num_generated_tokens = len(item.token_ids)
        spec.wall_time_s = now - item.started
        if handle.first_text_at is not None:
            spec.prefill_time_s = handle.first_text_at - item.started
        reason = output.outputs[0].finish_reason or "stop"
        completion = Completion(
            request_id=handle.id,
            engine_id=ctx.engine_id,
            model=ctx.model_name,
            text=item.text,
            token_ids=item.token_ids,
            prompt_tokens=len(output.prompt_token_ids or ()),
            finish_reason="length" if reason == "length" else "stop",
            speculative=self._strategy_label != "none",
            strategy=self._strategy_label,
            metrics=spec,
            queued_s=item.started - handle.submitted_at,
            ttft_s=(handle.first_text_at - handle.submitted_at) if handle.first_text_at else None,
            latency_s=now - handle.submitted_at,
        )
        ctx.complete(handle, completion, now - item.started)

    def hf_tokenizer(self) -> Any:
        """vLLM's own tokenizer (``LLM.get_tokenizer()``), the one :meth:`prompt` uses."""
        return getattr(self, "tokenizer", None)

    def max_model_len(self) -> int | None:
        """vLLM's resolved ``max_model_len`` (the ``--engine-arg`` or the model's)."""
        config = getattr(getattr(self, "engine", None), "model_config", None)
        limit = getattr(config, "max_model_len", None)
        return int(limit) if isinstance(limit, int) else None

    def describe(self) -> dict[str, Any]:
        args = getattr(getattr(self, "service", None), "engine_args", None) or {}
        keep = ("tensor_parallel_size", "pipeline_parallel_size", "distributed_executor_backend")
        return {k: args[k] for k in keep if k in args} | {
            "speculative_config": args.get("speculative_config")
        }
