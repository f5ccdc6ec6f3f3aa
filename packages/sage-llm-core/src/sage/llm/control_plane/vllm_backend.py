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
from sage.llm.control_plane.errors import InvalidRequestError
from sage.llm.control_plane.requests import Completion
from sage.llm.control_plane.states import Capabilities
from sage.llm.engines.vllm.config import add_load_switch
from sage.llm.engines.vllm.cpu import with_cpu_defaults
from sage.llm.metrics import SpecDecodeMetrics
from sage.llm.prompts import prompt_token_ids

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
        if request.top_k is not None:
            kw["top_k"] = request.top_k
        if request.seed is not None:
            kw["seed"] = request.seed
        return SamplingParams(**kw)

    def prompt(self, request: GenerationRequest) -> Any:
        if request.messages is not None:
            text = self.tokenizer.apply_chat_template(
                list(request.messages), tokenize=False, add_generation_prompt=True
            )
            return {"prompt_token_ids": self.tokenizer(text, add_special_tokens=False)["input_ids"]}
        assert request.prompt is not None
        # Completions: the text as is, tokenized exactly as the reference engine does.
        return {"prompt_token_ids": prompt_token_ids(self.tokenizer, request.prompt, chat=False)}

    def run(self, ctx: WorkerContext) -> None:
        from sage.llm.engines.vllm.metrics import read_metrics, snapshot, spec_decode_delta

        live: dict[str, _Live] = {}
        batch = 0
        counters = snapshot(read_metrics(self.llm), self.metrics_name)
        while True:
            handle = ctx.next_request(block=not live)
            while handle is not None:
                try:
                    self.engine.add_request(
                        handle.id, self.prompt(handle.request), self.sampling_params(handle.request)
                    )
                    live[handle.id] = _Live(handle, time.monotonic())
                except (ValueError, TypeError) as exc:
                    ctx.fail_request(handle, InvalidRequestError(str(exc)))
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
