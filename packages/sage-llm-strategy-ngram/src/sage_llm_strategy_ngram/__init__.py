"""N-gram (prompt lookup) speculative decoding for sage-llm.

Registered as the ``ngram`` strategy through the ``sage.llm.speculative`` entry point; users
reach it with ``sage.llm.get_strategy("ngram")`` or ``from sage.llm import NgramStrategy``.
"""

from sage_llm_strategy_ngram._version import __version__
from sage_llm_strategy_ngram.strategy import NgramStrategy

__all__ = ["NgramStrategy", "__version__"]
