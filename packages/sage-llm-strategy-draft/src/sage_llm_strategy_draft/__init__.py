"""Draft-model speculative decoding for sage-llm.

Registered as the ``draft`` strategy (alias ``draft-model``) through the
``sage.llm.speculative`` entry point; ``from sage.llm import DraftModelStrategy`` also works.
"""

from sage_llm_strategy_draft._version import __version__
from sage_llm_strategy_draft.strategy import DraftModelStrategy

__all__ = ["DraftModelStrategy", "__version__"]
