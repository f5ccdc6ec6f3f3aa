"""Every difference between transformers versions that the engine and proposers have to bridge.

The core declares ``transformers>=4.56``; CI runs the losslessness tests on the lowest and the
newest release of that range (``nox -s engine_transformers``). Everything version-dependent goes
through this module, so a new release is checked in one place:

* The forward argument for the KV cache: ``past_key_values`` up to 5.23; 5.24 renamed it
  ``cache`` (the old name still works there, with a FutureWarning, until 5.40).
* ``Cache.crop``: a negative argument removes that many tokens in every version, but ``0`` and
  positive values differ. In 4.x ``crop(n)`` for ``n >= 0`` keeps the first ``n`` tokens, so
  ``crop(-0)`` (nothing rejected) empties the cache; in 5.x ``crop(0)`` is a no-op and a
  positive value is refused. :func:`drop_last_tokens` only ever passes a negative number.
* Rotary-embedding settings in ``config.json``: 5.x writes ``rope_parameters`` (a dict with
  ``rope_theta``); 4.x only reads ``rope_theta``/``rope_scaling`` and silently falls back to
  its default theta, which computes a different model (a model pack converted with 5.x gave
  other tokens on 4.56). :func:`legacy_config` translates before 4.x builds the model.
* Sliding-window layers: 5.x can record the states that fell out of the window
  (``activate_past_recording``) so that a rejected draft can be rolled back anywhere; 4.x
  cannot crop such a layer once it has seen a full window. :func:`check_rollback` says so
  before a request starts instead of failing in the middle of it.
"""

from __future__ import annotations

import inspect
from typing import Any

from sage.llm.engines.transformers.errors import EngineError

_CACHE_ARGUMENT: dict[type, str] = {}


def cache_argument(model: Any) -> str:
    """The name under which ``model.forward`` takes its KV cache (looked up once per class)."""
    model_class: Any = type(model)
    name = _CACHE_ARGUMENT.get(model_class)
    if name is None:
        parameters = inspect.signature(model_class.forward).parameters
        name = _CACHE_ARGUMENT[model_class] = (
            "cache" if "cache" in parameters else "past_key_values"
        )
    return name


def new_cache(model: Any) -> Any:
    """An empty ``DynamicCache`` laid out for ``model`` (full and sliding-window layers)."""
    from transformers import DynamicCache

    return DynamicCache(config=model.config)


def drop_last_tokens(cache: Any, count: int) -> None:
    """Remove the last ``count`` tokens from ``cache``; ``count == 0`` leaves it untouched."""
    if count < 0:
        raise ValueError(f"cannot drop a negative number of tokens ({count}).")
    if count:
        cache.crop(-count)


def enable_rollback(cache: Any) -> None:
    """Let sliding-window layers be cropped past their window (5.x; a no-op elsewhere)."""
    record_past = getattr(cache, "activate_past_recording", None)
    if record_past is not None:
        record_past()


def sliding_window(model: Any) -> int | None:
    """The smallest sliding window among ``model``'s attention layers, or ``None``."""
    config = model.config.get_text_config()
    window = getattr(config, "sliding_window", None)
    window = window or getattr(config, "attention_chunk_size", None)
    if not window:
        return None
    layer_types = getattr(config, "layer_types", None)
    if layer_types is not None and not any(
        t in ("sliding_attention", "chunked_attention") for t in layer_types
    ):
        return None
    return int(window)


def check_rollback(model: Any, cache: Any, total_tokens: int) -> None:
    """Refuse, before it starts, a speculative request this transformers cannot roll back.

    Raised only with transformers 4.x on a model with sliding-window layers when the request
    (prompt plus output) is longer than the window.
    """
    if hasattr(cache, "activate_past_recording"):
        return
    window = sliding_window(model)
    if window is not None and total_tokens > window:
        import transformers

        raise EngineError(
            f"speculative decoding on this model needs to roll back its sliding-window KV cache "
            f"(window {window} tokens, request {total_tokens}), which transformers "
            f"{transformers.__version__} cannot do; upgrade to transformers>=5, shorten the "
            "request, or generate without a strategy."
        )


def forward(model: Any, token_ids: list[int], cache: Any, logits_to_keep: int) -> Any:
    """Run ``model`` on ``token_ids`` after ``cache`` and return the last ``logits_to_keep``
    rows of logits (``[logits_to_keep, vocab]``); the cache grows by ``len(token_ids)``."""
    import torch

    device = next(model.parameters()).device
    kwargs = {cache_argument(model): cache}
    return model(
        input_ids=torch.tensor([token_ids], device=device),
        **kwargs,
        use_cache=True,
        logits_to_keep=logits_to_keep,
    ).logits[0]


def transformers_major() -> int:
    import transformers

    return int(transformers.__version__.split(".", 1)[0])


def legacy_config(path: str, **kwargs: Any) -> Any:
    """On transformers 4.x, the model's config with 5.x ``rope_parameters`` translated to the
    ``rope_theta``/``rope_scaling`` 4.x reads; ``None`` when nothing needs translating (and
    always on 5.x, which reads both forms)."""
    if transformers_major() >= 5:
        return None
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path, **kwargs)
    rope = getattr(config, "rope_parameters", None)
    if not isinstance(rope, dict) or "rope_theta" not in rope:
        return None
    config.rope_theta = float(rope["rope_theta"])
    scaling = {k: v for k, v in rope.items() if k != "rope_theta"}
    if scaling.get("rope_type", "default") != "default":
        config.rope_scaling = scaling
    return config
