"""sage.llm — the speculative-decoding layer of the SAGE LLM stack.

Strategies are plugins found through the ``sage.llm.speculative`` entry-point group::

    from sage.llm import get_strategy, list_strategies
    strategy = get_strategy("ngram", n=5, num_speculative_tokens=4)

The seed's class imports keep working and are resolved lazily through the same entry points
(``from sage.llm import NgramStrategy``); if the providing distribution is missing, the
``ImportError`` names it. Importing this package never imports torch, transformers or vLLM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sage.llm._lazy import lazy_getattr
from sage.llm._version import __version__
from sage.llm.errors import (
    AmbiguousStrategyError,
    EngineConfigError,
    IncompatibleStrategyError,
    InvalidParameterError,
    SageLLMError,
    StrategyDisabledError,
    StrategyError,
    StrategyLoadError,
    StrategyNotInstalledError,
    StrategyPluginError,
    StrategySpecError,
    UnknownStrategyError,
)
from sage.llm.params import param
from sage.llm.proposer import Proposal, Proposer, ProposerContext
from sage.llm.registry import (
    StrategyInfo,
    get_strategy,
    get_strategy_class,
    list_strategies,
)
from sage.llm.strategy import SpeculativeStrategy

if TYPE_CHECKING:
    from sage.llm.hookspecs import hookimpl

PLUGIN_API_VERSION = "1.1"
"""The strategy contract's version; plugins declare the ``sage-llm-core`` range they support."""

# Attributes that live in heavier modules, imported on first use.
_LAZY_ATTRIBUTES: dict[str, str] = {
    "hookimpl": "sage.llm.hookspecs",  # pluggy is imported when a plugin module asks for it
    "build_engine_args": "sage.llm.engines.vllm.config",
    "VLLMService": "sage.llm.engines.vllm.service",
    "VLLMServiceConfig": "sage.llm.engines.vllm.service",
}

__all__ = [
    "PLUGIN_API_VERSION",
    "AmbiguousStrategyError",
    "EngineConfigError",
    "IncompatibleStrategyError",
    "InvalidParameterError",
    "Proposal",
    "Proposer",
    "ProposerContext",
    "SageLLMError",
    "SpeculativeStrategy",
    "StrategyDisabledError",
    "StrategyError",
    "StrategyInfo",
    "StrategyLoadError",
    "StrategyNotInstalledError",
    "StrategyPluginError",
    "StrategySpecError",
    "UnknownStrategyError",
    "VLLMService",
    "VLLMServiceConfig",
    "__version__",
    "build_engine_args",
    "get_strategy",
    "get_strategy_class",
    "hookimpl",
    "list_strategies",
    "param",
]


__getattr__ = lazy_getattr(__name__, _LAZY_ATTRIBUTES)
