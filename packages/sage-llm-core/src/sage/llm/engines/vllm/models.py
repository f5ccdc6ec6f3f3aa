"""Turning a model name into something vLLM can load, without hanging on an unreachable hub.

Order: an existing local directory; a model pack of the project (``sage.llm.models``, when
that module is installed); a hub id already in the local cache; a hub id downloaded now, only
when ``auto_download`` is set. Anything else is a :class:`ModelResolutionError` that says which
of these were tried, instead of vLLM's retries and traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

from sage.llm.engines.vllm.errors import ModelResolutionError

HUB_TIMEOUT_S = 10.0
"""Seconds a hub request may take before the hub counts as unreachable."""


def looks_like_path(name: str) -> bool:
    """True for names that can only mean a filesystem path (absolute, ./, ../, ~)."""
    return name.startswith(("/", "./", "../", "~", os.sep))


def resolve_model(
    name: str,
    *,
    auto_download: bool = False,
    revision: str | None = None,
    role: str = "model",
) -> str:
    """A local directory (or, failing local options, a downloaded snapshot) for ``name``.

    ``role`` ("target model", "draft model") only shapes error messages.
    """
    if not name or not name.strip():
        raise ModelResolutionError(f"the {role} name is empty; pass a local path or a hub id.")
    path = Path(name).expanduser()
    if path.is_dir():
        _require_config(path, role)
        return str(path.resolve())
    if looks_like_path(name):
        raise ModelResolutionError(
            f"the {role} {name!r} looks like a local path but no such directory exists. "
            "Check the path, or pass a hub id such as 'Qwen/Qwen2.5-0.5B-Instruct'."
        )
    packed = _from_model_pack(name)
    if packed is not None:
        return packed
    cached = _from_hub(name, revision=revision, local_only=True)
    if cached is not None:
        return cached
    if not auto_download:
        raise ModelResolutionError(
            f"the {role} {name!r} is not a local directory, a model pack, or in the local hub "
            "cache, and auto_download is off. Download it first (huggingface-cli download "
            f"{name}) or set auto_download=True."
        )
    downloaded = _from_hub(name, revision=revision, local_only=False)
    if downloaded is None:
        raise ModelResolutionError(
            f"the {role} {name!r} could not be downloaded: the model hub is not reachable "
            f"(or HF_HUB_OFFLINE is set) or has no such repository. Use a local directory, "
            "or run where the hub is reachable."
        )
    return downloaded


def _require_config(path: Path, role: str) -> None:
    if not (path / "config.json").is_file() and not any(path.glob("*.gguf")):
        raise ModelResolutionError(
            f"the {role} directory {str(path)!r} has no config.json (nor a .gguf file); it is "
            "not a model vLLM can load."
        )


def _from_model_pack(name: str) -> str | None:
    """A model pack's local directory (pulled on first use); None when ``name`` is no pack.

    A pack that exists but fails to download or verify is an error, not a fallback to the hub.
    """
    from sage.llm.models import UnknownModelError
    from sage.llm.models import resolve_model as resolve_pack

    try:
        return str(resolve_pack(name, hub=False))
    except UnknownModelError:
        return None


def _from_hub(name: str, *, revision: str | None, local_only: bool) -> str | None:
    """A snapshot directory from the Hugging Face cache (or the hub); None when unavailable."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    try:
        return str(
            snapshot_download(
                repo_id=name,
                revision=revision,
                local_files_only=local_only or offline,
                etag_timeout=HUB_TIMEOUT_S,
            )
        )
    except Exception:  # any hub failure means "not available here"; the caller explains
        return None
