"""EAGLE, EAGLE-3 and MTP speculative decoding for sage-llm on vLLM.

Registered as the ``eagle``, ``eagle3`` and ``mtp`` strategies through the
``sage.llm.speculative`` entry point; reach them with ``sage.llm.get_strategy("eagle3",
model=...)``. They configure vLLM only: the reference engine refuses them before loading a
head (their drafts need the target's hidden states).
"""

from sage_llm_strategy_eagle._version import __version__
from sage_llm_strategy_eagle.strategy import (
    Eagle3Strategy,
    EagleStrategy,
    HiddenStateStrategy,
    MTPStrategy,
)

__all__ = ["Eagle3Strategy", "EagleStrategy", "HiddenStateStrategy", "MTPStrategy", "__version__"]
