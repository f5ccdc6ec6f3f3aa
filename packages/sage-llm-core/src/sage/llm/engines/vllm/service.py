"""``VLLMService``: the seed's API for serving a model with a speculative strategy on vLLM.

::

    from sage.llm import VLLMService, VLLMServiceConfig, NgramStrategy

    config = VLLMServiceConfig(model_id="Qwen/Qwen2.5-7B-Instruct", auto_download=True,
                               speculative_strategy=NgramStrategy(n=5))
    with VLLMService(config) as service:
        result = service.generate(["Summarize: ..."], max_tokens=128, temperature=0.0)
        print(result.text, result.metrics.acceptance_rate)

``setup()`` resolves the model, lets the strategy write its engine arguments and wires a
strategy's vLLM proposer class (:func:`sage.llm.engines.vllm.config.build_engine_args`), runs
the project's checks (:mod:`.validation`), adds the CPU backend's memory defaults
(:func:`sage.llm.engines.vllm.cpu.cpu_defaults`, never over the user's own) and only then
builds ``vllm.LLM``. vLLM is imported there and nowhere earlier, so ``import sage.llm`` stays
light.

Prompts are prepared as the reference engine prepares them
(:func:`sage.llm.prompts.prompt_token_ids`: the chat template by default when the model has
one) and reach vLLM as token ids, so both engines see the same tokens.
"""

from __future__ import annotations

import gc
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sage.llm.engines.vllm.config import build_engine_args
from sage.llm.engines.vllm.cpu import with_cpu_defaults
from sage.llm.engines.vllm.errors import (
    VLLM_INSTALL_HINT,
    ServiceStateError,
    VLLMNotInstalledError,
)
from sage.llm.engines.vllm.metrics import read_metrics, snapshot, spec_decode_delta
from sage.llm.engines.vllm.models import resolve_model
from sage.llm.engines.vllm.validation import precheck_engine_args
from sage.llm.errors import InvalidParameterError
from sage.llm.registry import resolve_optional_strategy
from sage.llm.results import GenerationResult
from sage.llm.vllm_version import SUPPORTED_VLLM, installed_vllm_version

if TYPE_CHECKING:
    from sage.llm.strategy import SpeculativeStrategy


@dataclass
class VLLMServiceConfig:
    """What to serve and how; ``engine_args`` passes anything else to ``vllm.LLM`` verbatim."""

    model_id: str
    """A local model directory, a model-pack name, or a hub id."""
    auto_download: bool = False
    """Allow fetching ``model_id`` (and a draft model) from the model hub when not local."""
    speculative_strategy: SpeculativeStrategy | str | None = None
    """A strategy instance, a strategy string such as ``"ngram:n=5"``, or None/``"none"`` (no
    speculation). A string is resolved (and checked) once, when the config is made
    (:func:`sage.llm.registry.resolve_optional_strategy`)."""
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    max_model_len: int | None = None
    dtype: str = "auto"
    seed: int = 0
    revision: str | None = None
    engine_args: dict[str, Any] = field(default_factory=dict)
    """Extra ``vllm.LLM`` keyword arguments (e.g. ``gpu_memory_utilization``); they win over
    the fields above but not over what the strategy writes into ``speculative_config``. On
    vLLM's CPU backend, ``kv_cache_memory_bytes`` or ``gpu_memory_utilization`` here (or
    ``VLLM_CPU_KVCACHE_SPACE`` in the environment) replace the default KV-cache size."""

    def __post_init__(self) -> None:
        self.speculative_strategy = resolve_optional_strategy(self.speculative_strategy)
        for name in ("tensor_parallel_size", "pipeline_parallel_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidParameterError("VLLMServiceConfig", f"{name} must be >= 1.", name)
        if not isinstance(self.model_id, str) or not self.model_id.strip():
            raise InvalidParameterError(
                "VLLMServiceConfig", "model_id must name a model (path or hub id).", "model_id"
            )

    def base_engine_args(self, model_path: str) -> dict[str, Any]:
        """Engine arguments before the strategy writes its part."""
        args: dict[str, Any] = {
            "model": model_path,
            "tensor_parallel_size": self.tensor_parallel_size,
            "pipeline_parallel_size": self.pipeline_parallel_size,
            "dtype": self.dtype,
            "seed": self.seed,
            # vLLM only keeps the counters our metrics come from when stats are on.
            "disable_log_stats": False,
        }
        if self.max_model_len is not None:
            args["max_model_len"] = self.max_model_len
        if self.revision is not None:
            args["revision"] = self.revision
        args.update(self.engine_args)
        return args


class VLLMService:
    """A vLLM engine configured by a speculative strategy; see the module docstring."""

    def __init__(self, config: VLLMServiceConfig) -> None:
        self.config = config
        self.engine_args: dict[str, Any] | None = None
        """The exact ``vllm.LLM`` keyword arguments, once ``setup()`` has built them."""
        self._llm: Any = None
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------------

    def prepare_engine_args(self) -> dict[str, Any]:
        """Resolve the model and build + check the engine arguments, without starting vLLM."""
        config = self.config
        model_path = resolve_model(
            config.model_id,
            auto_download=config.auto_download,
            revision=config.revision,
            role="target model",
        )
        strategy = config.speculative_strategy
        assert not isinstance(strategy, str)  # resolved in VLLMServiceConfig.__post_init__
        args = build_engine_args(strategy, config.base_engine_args(model_path))
        label = strategy.strategy_name() if strategy is not None else "engine_args"
        # A draft strategy may carry its own auto_download (the seed's DraftModelStrategy does).
        draft_download = bool(getattr(strategy, "auto_download", config.auto_download))
        precheck_engine_args(args, auto_download=draft_download, strategy=label)
        return args

    def setup(self) -> VLLMService:
        """Start the engine (idempotent). Returns ``self`` for chaining."""
        if self._closed:
            raise ServiceStateError("this VLLMService was shut down; create a new one.")
        if self._llm is not None:
            return self
        llm_class = _import_llm()
        args = with_cpu_defaults(self.prepare_engine_args())
        self.engine_args = args
        self._llm = llm_class(**args)
        return self

    def shutdown(self) -> None:
        """Stop the engine and its worker processes; safe to call more than once."""
        llm, self._llm = self._llm, None
        self._closed = True
        if llm is None:
            return
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
        del llm
        gc.collect()

    cleanup = shutdown
    """The seed's name for :meth:`shutdown`."""

    @property
    def is_running(self) -> bool:
        return self._llm is not None

    @property
    def llm(self) -> Any:
        """The underlying ``vllm.LLM`` (for features this class does not wrap)."""
        return self._require()

    def __enter__(self) -> VLLMService:
        return self.setup()

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    # -- generation -------------------------------------------------------------------------

    def generate(
        self,
        prompts: str | Sequence[str] | Sequence[Sequence[int]],
        sampling_params: Any = None,
        *,
        chat: bool | None = None,
        **sampling_kwargs: Any,
    ) -> GenerationResult:
        """Generate for one prompt or many (texts, or lists of token ids), in one batch.

        The :class:`~sage.llm.results.GenerationResult` holds the first prompt's completion
        (``text``, ``token_ids``) and every prompt's (``texts``, ``batch_token_ids``).

        Texts are prepared as the reference engine prepares them: ``chat=None`` wraps each in
        the model's chat template when it has one, ``chat=False`` sends it raw (a completion),
        ``chat=True`` requires a template. ``sampling_params`` is a ``vllm.SamplingParams``, a
        dict of its fields, or None; extra keyword arguments (``max_tokens=64,
        temperature=0.0``) are its fields too.
        """
        llm = self._require()
        prompt_list = self.prompt_token_ids(prompts, chat=chat)
        params = _sampling_params(sampling_params, sampling_kwargs)
        before = snapshot(read_metrics(llm))
        start = time.perf_counter()
        outputs = llm.generate(
            [{"prompt_token_ids": ids} for ids in prompt_list], params, use_tqdm=False
        )
        wall = time.perf_counter() - start
        after = snapshot(read_metrics(llm))
        token_ids = [list(o.outputs[0].token_ids) for o in outputs]
        metrics = spec_decode_delta(
            before,
            after,
            num_generated_tokens=sum(len(t) for t in token_ids),
            wall_time_s=wall,
        )
        texts = [o.outputs[0].text for o in outputs]
        reason = outputs[0].outputs[0].finish_reason if outputs else None
        return GenerationResult(
            text=texts[0] if texts else "",
            token_ids=token_ids[0] if token_ids else [],
            prompt_token_ids=list(prompt_list[0]),
            finish_reason=str(reason) if reason is not None else "unknown",
            metrics=metrics,
            texts=texts,
            batch_token_ids=token_ids,
            prompt_tokens=sum(len(ids) for ids in prompt_list),
            outputs=list(outputs),
        )

    def prompt_token_ids(
        self, prompts: str | Sequence[str] | Sequence[Sequence[int]], *, chat: bool | None = None
    ) -> list[list[int]]:
        """The token ids :meth:`generate` sends for ``prompts`` (see its ``chat``)."""
        from sage.llm.prompts import PromptError, prompt_token_ids

        items: list[Any] = [prompts] if isinstance(prompts, str) else list(prompts)
        if items and not isinstance(items[0], str) and all(isinstance(t, int) for t in items):
            items = [items]  # one prompt given as token ids
        if not items or not all(isinstance(p, (str, Sequence)) for p in items):
            raise InvalidParameterError(
                "generate",
                "prompts must be a string, a non-empty list of strings, or lists of token ids.",
                "prompts",
            )
        tokenizer = self._require().get_tokenizer()
        name = self.config.model_id
        try:
            return [prompt_token_ids(tokenizer, p, chat=chat, model_name=name) for p in items]
        except PromptError as exc:
            raise InvalidParameterError("generate", str(exc), "prompts") from exc

    def _require(self) -> Any:
        if self._llm is None:
            state = "was shut down" if self._closed else "is not set up"
            raise ServiceStateError(f"the VLLMService {state}; call setup() first.")
        return self._llm


def _import_llm() -> Any:
    try:
        from vllm import LLM
    except ImportError as exc:
        raise VLLMNotInstalledError(
            f"vLLM is not installed (or failed to import: {exc}). "
            + VLLM_INSTALL_HINT.format(range=SUPPORTED_VLLM)
        ) from exc
    warn_if_unsupported_vllm()
    return LLM


def import_vllm_platform() -> Any:
    """vLLM's ``current_platform`` (what the installed build runs on), or a clear error."""
    _import_llm()
    from vllm.platforms import current_platform

    return current_platform


def warn_if_unsupported_vllm() -> None:
    """Warn (not fail) outside the tested range: vLLM renames speculative methods and
    signatures between minor versions, so other versions may or may not work."""
    from packaging.specifiers import SpecifierSet

    installed = installed_vllm_version()
    if installed is not None and installed not in SpecifierSet(SUPPORTED_VLLM):
        warnings.warn(
            f"vLLM {installed} is outside the range sage-llm supports ({SUPPORTED_VLLM}); "
            "speculative methods and the custom proposer interface change between minor "
            "versions. Install a supported vLLM if something fails.",
            RuntimeWarning,
            stacklevel=3,
        )


def _sampling_params(params: Any, extra: Mapping[str, Any]) -> Any:
    from vllm import SamplingParams

    if params is None:
        return SamplingParams(**extra)
    if isinstance(params, Mapping):
        return SamplingParams(**{**params, **extra})
    if extra:
        raise InvalidParameterError(
            "generate",
            "pass either a SamplingParams object or keyword arguments, not both.",
            "sampling_params",
        )
    return params
