"""The methods a benchmark compares, and how one of them generates for one prompt.

Every method is run on the same prompt token ids, greedy, with the same token budget:

* ``plain``: the reference engine without a strategy (the reference output and speed);
* one method per ``--strategy`` spec: the reference engine with that strategy;
* the transformers peers, so the comparison is like for like: ``hf-plain``
  (``model.generate``) and, for each strategy that names one (its ``transformers_peer`` hook),
  transformers' equivalent: ``hf-prompt-lookup`` for an n-gram lookup (same k, same longest
  n-gram), ``hf-assisted`` for a draft model (same draft);
* with ``--engine vllm``: ``vllm:plain`` and ``vllm:<spec>`` per strategy, the same strategy
  objects on vLLM (one engine per method: vLLM fixes speculation when the engine starts), fed
  the same prompt token ids and the reference engine's dtype.

Strategy strings are resolved once, in :func:`plan`; the engines get the objects.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sage.llm.engines.transformers.layout import WeightLayout

PLAIN = "plain"
HF_PLAIN = "hf-plain"
VLLM_PLAIN = "vllm:plain"
ENGINES = ("transformers", "vllm")


@dataclass(frozen=True)
class Method:
    """One row group of the table."""

    name: str
    kind: str
    """``engine`` (the reference engine), ``hf`` (transformers' own generate) or ``vllm``."""
    family: str
    """``plain`` or the strategy's canonical name: pairs a method with its peer."""
    strategy: str | None = None
    """Strategy spec handed to the engine (engine methods only)."""
    hf_kwargs: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    draft: str | None = None
    """Draft model for ``hf-assisted``."""
    assistant_config: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    """Set on the draft's own ``generation_config``: transformers reads the assisted-generation
    knobs (``num_assistant_tokens``, its schedule, ``assistant_confidence_threshold``) from the
    assistant model, not from the ``generate`` call. Left at its defaults it drafts up to 20
    tokens and stops below 0.4 confidence, which is not "the same k"."""
    resolved: Any = field(default=None, hash=False, compare=False, repr=False)
    """The strategy object for ``strategy`` (resolved once by :func:`plan`)."""
    peer: str | None = None
    """The transformers method this one is compared with (set by :func:`plan`; one family can
    have several, e.g. a strategy with and without a draft model)."""

    @property
    def ours(self) -> bool:
        """Ours must reproduce plain greedy exactly; a peer's mismatch is only reported.

        vLLM rows are reported, not failed: its CPU kernels round differently from PyTorch's,
        so a near-tie may flip a token (docs/vllm.md)."""
        return self.kind == "engine"

    @property
    def baseline(self) -> str:
        """The plain-decoding method this one's speedup is measured against (same engine)."""
        return VLLM_PLAIN if self.kind == "vllm" else PLAIN


@dataclass
class Output:
    token_ids: list[int]
    seconds: float
    metrics: dict[str, Any] | None = None


def plan(
    strategies: Sequence[str], *, peers: bool = True, engines: Sequence[str] = ("transformers",)
) -> list[Method]:
    """The methods for ``strategies`` (specs such as ``"ngram:num_speculative_tokens=4"``).

    Each spec is resolved (and validated) through the registry once, here, so a typo fails
    before any model is loaded. The reference engine always runs (its plain greedy output is
    the reference); ``"vllm"`` in ``engines`` adds the vLLM methods.
    """
    from sage.llm import get_strategy

    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        raise ValueError(f"unknown engine(s) {unknown}; choose from {list(ENGINES)}")
    methods = [Method(PLAIN, "engine", PLAIN)]
    if peers:
        methods.append(Method(HF_PLAIN, "hf", PLAIN))
    on_vllm = "vllm" in engines
    if on_vllm:
        methods.append(Method(VLLM_PLAIN, "vllm", PLAIN))
    seen: set[str] = {m.name for m in methods}
    for spec in strategies:
        strategy = get_strategy(spec)
        family = type(strategy).strategy_name()
        peer = _peer(family, strategy) if peers else None
        peer_name = peer.name if peer is not None else None
        mine = Method(spec, "engine", family, strategy=spec, resolved=strategy, peer=peer_name)
        theirs = (
            Method(f"vllm:{spec}", "vllm", family, strategy=spec, resolved=strategy, peer=peer_name)
            if on_vllm
            else None
        )
        for method in (mine, peer, theirs):
            if method is not None and method.name not in seen:
                methods.append(method)
                seen.add(method.name)
    return methods


ASSISTANT_KNOBS = (
    "num_assistant_tokens",
    "num_assistant_tokens_schedule",
    "assistant_confidence_threshold",
)
"""The assisted-generation settings transformers reads from the draft's ``generation_config``;
reset to transformers' defaults before every ``hf-assisted`` run, because one method's settings
(and the ``heuristic`` schedule's own updates) would otherwise carry over to the next."""


def assistant_defaults() -> dict[str, Any]:
    """transformers' own defaults for :data:`ASSISTANT_KNOBS` (4.x sets them in
    ``GenerationConfig()``, 5.x leaves them ``None`` there and fills them in at generate)."""
    from transformers import GenerationConfig

    config_class: Any = GenerationConfig  # untyped constructor
    fresh = config_class()
    fallback: dict[str, Any] = getattr(config_class, "_get_default_generation_params", dict)()
    values = {key: getattr(fresh, key, None) for key in ASSISTANT_KNOBS}
    return {key: fallback.get(key) if value is None else value for key, value in values.items()}


def _peer(family: str, strategy: Any) -> Method | None:
    """The transformers method that does what ``strategy`` does: its ``transformers_peer``
    hook's ``generate`` arguments, with the assisted-generation settings moved to the draft's
    own ``generation_config`` (where transformers reads them)."""
    from sage.llm.registry import plugin_code

    with plugin_code(strategy, "transformers_peer"):
        kwargs = strategy.transformers_peer()
    if not kwargs:
        return None
    hf_kwargs = dict(kwargs)
    draft = hf_kwargs.pop("assistant_model", None)
    knobs = {key: hf_kwargs.pop(key) for key in ASSISTANT_KNOBS if key in hf_kwargs}
    return Method(
        peer_name(hf_kwargs, draft, knobs),
        "hf",
        family,
        hf_kwargs=hf_kwargs,
        draft=None if draft is None else str(draft),
        assistant_config=knobs,
    )


def peer_name(hf_kwargs: dict[str, Any], draft: Any, knobs: dict[str, Any]) -> str:
    """``hf-assisted:k=5`` (``:default`` at transformers' own schedule),
    ``hf-prompt-lookup:k=10,n=4``, or ``hf:`` and the arguments for anything else."""
    if draft is not None:
        k = knobs.get("num_assistant_tokens")
        return f"hf-assisted:k={k}" if k is not None else "hf-assisted:default"
    k = hf_kwargs.get("prompt_lookup_num_tokens")
    if k is not None:
        n = hf_kwargs.get("max_matching_ngram_size")
        return f"hf-prompt-lookup:k={k}" + (f",n={n}" if n is not None else "")
    return "hf:" + ",".join(f"{key}={value}" for key, value in sorted(hf_kwargs.items()))


def peer_of(method: Method, methods: Sequence[Method]) -> Method | None:
    """The transformers method an engine (or vLLM) method is compared with (same family)."""
    if method.kind not in ("engine", "vllm"):
        return None
    if method.peer is not None:
        return next((m for m in methods if m.name == method.peer), None)
    for other in methods:
        if other.kind == "hf" and other.family == method.family:
            return other
    return None


def load_engine(
    path: Any,
    device: str | None = None,
    weight_layout: WeightLayout = "auto",
    dtype: str | None = None,
) -> Any:
    """The reference engine on ``path`` (a local model directory); ``dtype`` ``None`` or
    ``"auto"``: the engine's default (float32 on the CPU, bfloat16/float16 on CUDA)."""
    from sage.llm.engines.transformers import TransformersEngine

    return TransformersEngine.from_pretrained(
        str(path),
        device=device,
        weight_layout=weight_layout,
        dtype=None if dtype in (None, "auto") else dtype,
    )


def dtype_name(engine: Any) -> str:
    """``"float32"``, ``"bfloat16"``...: the loaded target's dtype, as the report shows it."""
    return str(engine.dtype).removeprefix("torch.")


def exact_dtype(dtype: str) -> bool:
    """Whether greedy speculative output must equal plain greedy token for token.

    In float32 the engine's verify pass and a one-token step agree on every argmax (tested).
    In bfloat16/float16 a k-token pass and a one-token pass round differently, so a near-tie
    can flip; there a difference is measured and reported, not a failure (docs/engine.md).
    """
    return dtype in ("float32", "float64")


class Runner:
    """Holds the loaded engine (and draft models for the peers) and runs one method once."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._drafts: dict[str, Any] = {}

    def _draft(self, name: str) -> Any:
        if name not in self._drafts:
            from sage.llm.engines.transformers.loading import load_model

            # Loaded as the draft strategy loads its draft (same dtype, PyTorch's default weight
            # layout), so the peer differs from ours only in the decoding loop.
            model, _ = load_model(
                name,
                device=str(self.engine.device),
                dtype=self.engine.model.dtype,
                require_tokenizer=False,
                weight_layout="row",
            )
            self._drafts[name] = model
        return self._drafts[name]

    def run(self, method: Method, prompt_ids: list[int], max_tokens: int) -> Output:
        if method.kind == "engine":
            start = time.perf_counter()
            strategy = method.resolved if method.resolved is not None else method.strategy
            result = self.engine.generate(
                prompt_ids,
                strategy=strategy if strategy != PLAIN else None,
                max_tokens=max_tokens,
            )
            seconds = time.perf_counter() - start
            return Output(list(result.token_ids), seconds, result.metrics.to_json())
        return self._run_hf(method, prompt_ids, max_tokens)

    def _run_hf(self, method: Method, prompt_ids: list[int], max_tokens: int) -> Output:
        import torch
        from transformers import GenerationConfig

        model = self.engine.model
        eos = sorted(self.engine.eos_token_ids)
        pad = getattr(model.generation_config, "pad_token_id", None)
        make_config: Any = GenerationConfig  # untyped constructor
        config = make_config(
            max_new_tokens=max_tokens,
            do_sample=False,
            eos_token_id=eos,
            pad_token_id=pad if pad is not None else (eos[0] if eos else 0),
            **method.hf_kwargs,
        )
        extra: dict[str, Any] = {}
        if method.draft is not None:
            assistant = self._draft(method.draft)
            for key, value in {**assistant_defaults(), **method.assistant_config}.items():
                setattr(assistant.generation_config, key, value)
            extra["assistant_model"] = assistant
        ids = torch.tensor([prompt_ids], device=self.engine.device)
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                ids, attention_mask=torch.ones_like(ids), generation_config=config, **extra
            )
        seconds = time.perf_counter() - start
        generated = out[0, len(prompt_ids) :].tolist()
        for i, token in enumerate(generated):  # assisted steps may run past EOS: cut there
            if token in eos:
                generated = generated[: i + 1]
                break
        return Output(generated[:max_tokens], seconds)


class VLLMMethod:
    """One vLLM method's engine, started for its block of questions, then shut down.

    Greedy, on the prompt token ids the reference engine prepared (chat template included), in
    the reference engine's dtype, so the outputs compare token for token. vLLM's own
    speculative counters give the acceptance figures (:mod:`sage.llm.engines.vllm.metrics`).
    """

    def __init__(
        self, method: Method, model_path: str, *, dtype: str, engine_args: dict[str, Any]
    ) -> None:
        from sage.llm.engines.vllm.service import VLLMService, VLLMServiceConfig

        config = VLLMServiceConfig(
            model_id=model_path,
            speculative_strategy=method.resolved,
            dtype=dtype,
            engine_args=dict(engine_args),
        )
        self.service = VLLMService(config)

    def __enter__(self) -> VLLMMethod:
        self.service.setup()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.service.shutdown()

    def run(self, prompt_ids: list[int], max_tokens: int) -> Output:
        start = time.perf_counter()
        result = self.service.generate([prompt_ids], max_tokens=max_tokens, temperature=0.0)
        seconds = time.perf_counter() - start
        return Output(list(result.token_ids), seconds, result.metrics.to_json())
