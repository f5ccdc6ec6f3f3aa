"""Install hints for the strategies this project publishes.

This is not a registry: nothing here is imported or resolved. When a name or a seed class
(``from sage.llm import NgramStrategy``) is asked for and no installed plugin provides it, the
error says which distribution to ``pip install``. Strategies are found only through entry
points (:mod:`sage.llm.discovery`).
"""

from __future__ import annotations

from typing import NamedTuple


class KnownStrategy(NamedTuple):
    name: str
    aliases: tuple[str, ...]
    class_name: str
    distribution: str


KNOWN_STRATEGIES: tuple[KnownStrategy, ...] = (
    KnownStrategy("ngram", (), "NgramStrategy", "sage-llm-strategy-ngram"),
    KnownStrategy("draft", ("draft-model",), "DraftModelStrategy", "sage-llm-strategy-draft"),
    KnownStrategy(
        "dynamic-lookahead", ("dynamic",), "DynamicLookaheadStrategy", "sage-llm-strategy-dynamic"
    ),
    KnownStrategy("eagle", (), "EagleStrategy", "sage-llm-strategy-eagle"),
    KnownStrategy("eagle3", (), "Eagle3Strategy", "sage-llm-strategy-eagle"),
    KnownStrategy("mtp", (), "MTPStrategy", "sage-llm-strategy-eagle"),
    KnownStrategy("suffix", (), "SuffixStrategy", "sage-llm-strategy-suffix"),
)


DEFAULT_STRATEGY = "ngram"
"""The strategy ``sage-llm generate``, ``serve``, ``bench`` and ``replay`` run when none is
given: a user-facing default value, the one place the core's code names a strategy (n-gram
lookup needs no second model and pays off on input-grounded prompts). Installed separately
like any other; a missing one gets its install hint above."""


def hint_for_name(name: str) -> KnownStrategy | None:
    key = name.strip().lower()
    for known in KNOWN_STRATEGIES:
        if key == known.name or key in known.aliases:
            return known
    return None


def hint_for_class(class_name: str) -> KnownStrategy | None:
    for known in KNOWN_STRATEGIES:
        if known.class_name == class_name:
            return known
    return None


def install_hint(known: KnownStrategy) -> str:
    return (
        f"Strategy {known.name!r} is provided by the distribution {known.distribution!r}, "
        f"which is not installed: pip install {known.distribution}."
    )


VLLM_METHODS: frozenset[str] = frozenset(
    {
        "ngram",
        "ngram_gpu",
        "suffix",
        "draft_model",
        "medusa",
        "mlp_speculator",
        "eagle",
        "eagle3",
        "extract_hidden_states",
        "dflash",
        "mtp",
        "custom_class",
    }
)
"""``speculative_config['method']`` values of vLLM 0.32 to 0.33 (``SpeculativeMethod`` in
``vllm/config/speculative.py``), plus ``custom_class``. Model-specific MTP variants end in
``_mtp``. The core checks a strategy's ``apply`` against this without importing vLLM; where
vLLM is installed, :func:`sage.llm.engines.vllm.validation.precheck_engine_args` asks it."""


def is_known_method(method: object) -> bool:
    """Whether ``method`` names a speculative method vLLM knows (or ``custom_class``)."""
    return isinstance(method, str) and (method in VLLM_METHODS or method.endswith("_mtp"))
