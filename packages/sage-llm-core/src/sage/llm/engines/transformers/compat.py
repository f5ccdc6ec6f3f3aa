"""Differences between transformers versions that the engine has to bridge.

transformers 5.24 renamed the forward argument ``past_key_values`` to ``cache`` (the old name
still works there, with a FutureWarning, until 5.40); 5.23 and older only know the old name.
"""

from __future__ import annotations

import inspect
from typing import Any


def cache_argument(model: Any) -> str:
    """The name under which ``model.forward`` takes its KV cache."""
    parameters = inspect.signature(model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"
