"""Errors raised by the reference engine.

Each one says what was wrong and what to do next. They subclass the built-in exception a caller
would naturally catch (``ValueError`` for bad arguments, ``FileNotFoundError``/``OSError`` for a
model that cannot be found) so that generic handlers keep working.
"""

from __future__ import annotations

from sage.llm.errors import SageLLMError


class EngineError(SageLLMError):
    """Base class of the reference engine's errors."""


class InvalidSamplingParamsError(EngineError, ValueError):
    """A temperature, top-k, top-p, max-tokens or seed value is out of range."""


class ModelLoadError(EngineError, OSError):
    """A model could not be found or loaded (unknown path, unreachable hub, broken files)."""


class VocabularyMismatchError(EngineError, ValueError):
    """The draft model's vocabulary differs from the target model's."""


class DeviceUnavailableError(EngineError, ValueError):
    """The requested device does not exist here (e.g. ``cuda`` with a CPU-only torch)."""
