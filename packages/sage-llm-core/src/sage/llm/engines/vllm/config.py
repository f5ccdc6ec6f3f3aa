"""The one place vLLM's ``speculative_config`` is written and checked.

A strategy's ``apply`` fills in its part; everything else that touches vLLM's speculative
engine arguments is here, so each decision is made once:

* :func:`build_engine_args`, the one path from a strategy to the keyword arguments of
  ``vllm.LLM`` / ``EngineArgs`` (``VLLMService``, ``sage-llm vllm-args`` and the control plane
  all call it);
* :func:`apply_strategy`, which runs the plugin's ``apply`` and checks what it wrote (the
  target ``model`` untouched, a ``method`` vLLM knows);
* :func:`wire_proposer_class`, which points ``model`` at a ``custom_class`` proposer;
* :func:`migrate_legacy_keys` (older plugins and the seed's ``MyCustomStrategy`` write top-level
  keys) and :func:`check_speculative_config` (what vLLM would misread);
* :func:`add_load_switch`, the control plane's "stop speculating from this batch size".

The checks that need the installed vLLM, or files on disk, run later in
:mod:`sage.llm.engines.vllm.validation`; the vLLM version a strategy may require is read by
:mod:`sage.llm.vllm_version`, below the contract. Supported vLLM: 0.32 to 0.33. Nothing here
imports vLLM (:func:`add_load_switch` asks it which switch it has, when it is installed).
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from typing import TYPE_CHECKING, Any

from sage.llm import known
from sage.llm.engines.vllm.proposer import (
    CUSTOM_CLASS,
    check_custom_class_model,
    proposer_class_of,
)
from sage.llm.errors import EngineConfigError
from sage.llm.registry import entry_of, plugin_code, resolve_optional_strategy

if TYPE_CHECKING:
    from sage.llm.strategy import SpeculativeStrategy

LEGACY_KEYS: dict[str, str] = {
    "num_speculative_tokens": "num_speculative_tokens",
    "speculative_model": "model",
    "ngram_prompt_lookup_max": "prompt_lookup_max",
    "ngram_prompt_lookup_min": "prompt_lookup_min",
    "speculative_draft_tensor_parallel_size": "draft_tensor_parallel_size",
    "speculative_max_model_len": "max_model_len",
}
"""Top-level engine arguments of old vLLM releases → their ``speculative_config`` key."""

_NGRAM_MODEL_MARKER = "[ngram]"
"""Old vLLM selected prompt lookup with ``speculative_model="[ngram]"``."""


def build_engine_args(
    strategy: SpeculativeStrategy | str | None,
    engine_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The engine arguments for ``strategy`` on top of ``engine_config`` (not modified).

    ``strategy`` may be an instance or a string such as ``"ngram:n=5"``; ``None`` (or
    ``"none"``) returns a copy of ``engine_config`` without speculation.
    """
    args = copy.deepcopy(engine_config) if engine_config else {}
    resolved = resolve_optional_strategy(strategy)
    if resolved is None:
        return args
    apply_strategy(resolved, args)  # the plugin's errors name it; model and method checked
    wire_proposer_class(resolved, args)  # a custom_class proposer: its path into "model"
    label = resolved.strategy_name()
    migrate_legacy_keys(args, label)
    check_speculative_config(args, label)
    return args


def apply_strategy(strategy: SpeculativeStrategy, engine_config: dict[str, Any]) -> None:
    """Call ``strategy.apply(engine_config)``, then check what the core can check.

    A plugin's exception is reported as its :class:`~sage.llm.errors.StrategyPluginError`.
    After ``apply``, the ``model`` the caller set must still be there, unchanged (a strategy
    configures speculation, never the target), and ``speculative_config['method']`` must be one
    vLLM knows or ``custom_class``.
    """
    model = engine_config.get("model")
    with plugin_code(strategy, "apply"):
        strategy.apply(engine_config)
    label = strategy.strategy_name()
    entry = entry_of(type(strategy))
    whose = f"{label!r} from {entry.distribution}" if entry and entry.distribution else repr(label)
    if model is not None and engine_config.get("model") != model:
        raise EngineConfigError(
            f"strategy {whose}: apply() removed or changed engine_config['model'] "
            f"(was {model!r}, now {engine_config.get('model')!r}); a strategy may only write "
            "speculative_config. Report this to the strategy's maintainers."
        )
    section = engine_config.get("speculative_config")
    method = section.get("method") if isinstance(section, dict) else None
    if method is not None and not known.is_known_method(method):
        import difflib

        close = difflib.get_close_matches(str(method), sorted(known.VLLM_METHODS), n=1)
        raise EngineConfigError(
            f"strategy {whose}: apply() wrote speculative_config['method']={method!r}, which "
            "vLLM does not know"
            + (f" (did you mean {close[0]!r}?)" if close else "")
            + f". Known: {', '.join(sorted(known.VLLM_METHODS))}, or 'custom_class' with a "
            "proposer class."
        )


def wire_proposer_class(strategy: Any, engine_args: dict[str, Any]) -> None:
    """Point ``speculative_config["model"]`` at the strategy's proposer class, if it has one.

    The strategy's ``apply`` must have chosen ``method="custom_class"``; a proposer class with
    any other method is a contradiction and an error, not a silent choice. (The class itself
    is checked in :mod:`sage.llm.engines.vllm.proposer`.)
    """
    path = proposer_class_of(strategy)
    section = engine_args.get("speculative_config") or {}
    method = section.get("method")
    name = getattr(strategy, "strategy_name", lambda: type(strategy).__name__)()
    if path is None:
        if method == CUSTOM_CLASS:
            check_custom_class_model(section, name)
        return
    if method != CUSTOM_CLASS:
        raise EngineConfigError(
            f"{name}: vllm_proposer_class() returned {path}, but apply() wrote method "
            f"{method!r}; write method='custom_class' to use the proposer class."
        )
    existing = section.get("model")
    if existing not in (None, path):
        raise EngineConfigError(
            f"{name}: speculative_config['model']={existing!r} conflicts with "
            f"vllm_proposer_class() = {path}; leave 'model' out."
        )
    section["model"] = path


def migrate_legacy_keys(engine_config: dict[str, Any], strategy: str = "a strategy") -> None:
    """Move legacy top-level speculative keys into ``speculative_config``, with a warning."""
    moved = [key for key in LEGACY_KEYS if key in engine_config]
    if not moved:
        return
    section = engine_config.get("speculative_config") or {}
    if not isinstance(section, dict):
        raise EngineConfigError(
            f"{strategy}: speculative_config must be a dict, got {type(section).__name__}."
        )
    for key in moved:
        value = engine_config.pop(key)
        new_key = LEGACY_KEYS[key]
        if key == "speculative_model" and value == _NGRAM_MODEL_MARKER:
            section.setdefault("method", "ngram")
            continue
        if new_key in section and section[new_key] != value:
            raise EngineConfigError(
                f"{strategy}: legacy key {key!r}={value!r} conflicts with "
                f"speculative_config[{new_key!r}]={section[new_key]!r}; write only the latter."
            )
        section[new_key] = value
        if key == "speculative_model":
            section.setdefault("method", "draft_model")
    inferred = ""
    if "method" not in section:
        section["method"] = "ngram"
        inferred = (
            " No draft model was given, so method='ngram' (prompt lookup) was chosen, as old "
            "vLLM releases did for speculative_model='[ngram]'."
        )
    engine_config["speculative_config"] = section
    warnings.warn(
        f"{strategy} wrote legacy top-level engine argument(s) {', '.join(moved)}; they were "
        f"moved into engine_config['speculative_config'].{inferred} Update the strategy to "
        "write speculative_config (with an explicit 'method') directly; see docs/migration.md.",
        DeprecationWarning,
        stacklevel=3,
    )


def check_speculative_config(engine_config: dict[str, Any], strategy: str = "a strategy") -> None:
    """Reject what vLLM would misread: misplaced parallelism, a config without a method."""
    section = engine_config.get("speculative_config")
    if section is None:
        return
    if not isinstance(section, dict):
        raise EngineConfigError(
            f"{strategy}: speculative_config must be a dict, got {type(section).__name__}."
        )
    if "tensor_parallel_size" in section:
        raise EngineConfigError(
            f"{strategy}: tensor_parallel_size does not belong in speculative_config (it is "
            "the target's engine argument). Use draft_tensor_parallel_size for the draft model."
        )
    if section and "method" not in section:
        raise EngineConfigError(
            f"{strategy}: speculative_config has no 'method' (got keys {sorted(section)}); "
            "set it explicitly, e.g. 'ngram' or 'draft_model'."
        )
    k = section.get("num_speculative_tokens")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise EngineConfigError(
            f"{strategy}: num_speculative_tokens must be an integer >= 1, got {k!r}."
        )


def add_load_switch(spec: dict[str, Any], max_batch: int) -> None:
    """Make vLLM stop speculating from ``max_batch`` running requests, per step.

    With ``disable_by_batch_size`` where the installed vLLM has it; otherwise (vLLM 0.32) with
    its batch-size table: the strategy's k below ``max_batch`` and 0 from there on (vLLM
    carries the last row to larger batches). A strategy that wrote its own table keeps it, and
    a ``custom_class`` proposer (dynamic-lookahead) switches by measured load itself."""
    if _has_batch_switch():
        spec.setdefault("disable_by_batch_size", max_batch)
        return
    k = spec.get("num_speculative_tokens")
    if spec.get("method") == CUSTOM_CLASS or max_batch < 2 or not isinstance(k, int):
        return
    if _has_batch_table():
        spec.setdefault(
            "num_speculative_tokens_per_batch_size",
            [[1, max_batch - 1, k], [max_batch, max_batch, 0]],
        )


def _has_batch_table() -> bool:
    """Whether the installed vLLM's SpeculativeConfig has the per-batch-size k table."""
    return _has_field("num_speculative_tokens_per_batch_size")


def _has_batch_switch() -> bool:
    """Whether the installed vLLM's SpeculativeConfig has ``disable_by_batch_size``."""
    return _has_field("disable_by_batch_size")


def _has_field(name: str) -> bool:
    try:
        from vllm.config import SpeculativeConfig

        return name in {f.name for f in dataclasses.fields(SpeculativeConfig)}
    except (ImportError, TypeError):
        return False
