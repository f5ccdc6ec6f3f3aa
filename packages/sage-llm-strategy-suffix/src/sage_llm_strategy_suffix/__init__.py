"""Suffix decoding (SuffixDecoding, Snowflake, NeurIPS 2025) for sage-llm.

Registered as the ``suffix`` strategy through the ``sage.llm.speculative`` entry point; users
reach it with ``sage.llm.get_strategy("suffix")``. ``SuffixProposer`` (the pure-Python index),
``ArcticSuffixProposer`` (arctic-inference's C++ cache) and ``SuffixTree`` are public too, for
strategies that build on suffix lookup.
"""

from typing import Any

from sage_llm_strategy_suffix._version import __version__
from sage_llm_strategy_suffix.strategy import ArcticInferenceMissingError, SuffixStrategy

__all__ = [
    "ArcticInferenceMissingError",
    "ArcticSuffixProposer",
    "SuffixProposer",
    "SuffixStrategy",
    "SuffixTree",
    "__version__",
]


def __getattr__(name: str) -> Any:
    """The proposers are imported on first use: resolving the strategy by name stays cheap."""
    if name in ("SuffixProposer", "ArcticSuffixProposer"):
        from sage_llm_strategy_suffix import proposer

        return getattr(proposer, name)
    if name == "SuffixTree":
        from sage_llm_strategy_suffix.index import SuffixTree

        return SuffixTree
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
