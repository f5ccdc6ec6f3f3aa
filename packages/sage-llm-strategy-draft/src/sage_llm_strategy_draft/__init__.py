"""Draft-model speculative decoding for sage-llm.

Registered as the ``draft`` strategy (alias ``draft-model``) through the
``sage.llm.speculative`` entry point; ``from sage.llm import DraftModelStrategy`` also works.
``DraftModelProposer`` and ``build_draft_proposer`` are public, for strategies that drive a
draft model (dynamic-lookahead does, with its confidence stop).
"""

from typing import Any

from sage_llm_strategy_draft._version import __version__
from sage_llm_strategy_draft.strategy import DraftModelStrategy

__all__ = ["DraftModelProposer", "DraftModelStrategy", "__version__", "build_draft_proposer"]


def __getattr__(name: str) -> Any:
    """The proposer is imported on first use: resolving the strategy by name stays cheap."""
    if name in ("DraftModelProposer", "build_draft_proposer"):
        from sage_llm_strategy_draft import proposer

        return getattr(proposer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
