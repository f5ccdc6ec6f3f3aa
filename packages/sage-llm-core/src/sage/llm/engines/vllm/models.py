"""The vLLM side of model resolution: vLLM's own accepted inputs, then the project's resolver.

Names go through :func:`sage.llm.models.resolve_model`, the one resolver both engines use (local
directory, model pack, hub cache, hub download only with ``auto_download``), so vLLM never
searches a hub itself and never hangs on an unreachable one. What this module adds: vLLM also
loads a directory holding only ``.gguf`` files, and its errors are a
:class:`ModelResolutionError` naming the role (target or draft model).
"""

from __future__ import annotations

import os
from pathlib import Path

from sage.llm.engines.vllm.errors import ModelResolutionError


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
    """A local directory for ``name`` (downloading a hub id only when ``auto_download``).

    ``role`` ("target model", "draft model") only shapes error messages. A model pack that
    exists but fails to download or verify raises its own error, never a fallback to the hub.
    """
    from sage.llm.models import UnknownModelError
    from sage.llm.models import resolve_model as resolve

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
    try:
        return str(resolve(name, download=auto_download, revision=revision))
    except UnknownModelError as exc:
        raise ModelResolutionError(f"the {role}: {exc}") from exc


def _require_config(path: Path, role: str) -> None:
    if not (path / "config.json").is_file() and not any(path.glob("*.gguf")):
        raise ModelResolutionError(
            f"the {role} directory {str(path)!r} has no config.json (nor a .gguf file); it is "
            "not a model vLLM can load."
        )
