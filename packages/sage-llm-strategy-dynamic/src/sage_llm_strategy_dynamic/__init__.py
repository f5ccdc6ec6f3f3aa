"""Dynamic-lookahead speculative decoding for sage-llm.

Registered as ``dynamic-lookahead`` (alias ``dynamic``) through the ``sage.llm.speculative``
entry point; ``from sage.llm import DynamicLookaheadStrategy`` also works.
"""

from sage_llm_strategy_dynamic._version import __version__
from sage_llm_strategy_dynamic.strategy import DynamicLookaheadStrategy

__all__ = ["DynamicLookaheadStrategy", "__version__"]
