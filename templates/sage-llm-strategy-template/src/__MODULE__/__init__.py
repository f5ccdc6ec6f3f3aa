"""__NAME__ speculative decoding for sage-llm (registered as the ``__NAME__`` strategy)."""

from __MODULE__._version import __version__
from __MODULE__.strategy import __CLASS__

__all__ = ["__CLASS__", "__version__"]
