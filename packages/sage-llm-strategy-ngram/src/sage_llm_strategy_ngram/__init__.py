"""N-gram (prompt lookup) speculative decoding for sage-llm.

Registered as the ``ngram`` strategy through the ``sage.llm.speculative`` entry point; users
reach it with ``sage.llm.get_strategy("ngram")`` or ``from sage.llm import NgramStrategy``.
``NgramProposer`` (the per-step lookup) and ``DEFAULT_LOOKUP_MIN`` are public too, for
strategies that build on n-gram lookup.
"""

from typing import Any

from sage_llm_strategy_ngram._version import __version__
from sage_llm_strategy_ngram.strategy import DEFAULT_LOOKUP_MIN, NgramStrategy

__all__ = ["DEFAULT_LOOKUP_MIN", "NgramProposer", "NgramStrategy", "__version__"]


def __getattr__(name: str) -> Any:
    """The proposer is imported on first use: resolving the strategy by name stays cheap."""
    if name in ("NgramProposer",):
        from sage_llm_strategy_ngram import proposer

        return getattr(proposer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
