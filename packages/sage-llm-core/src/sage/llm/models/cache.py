"""Where pulled models live: one directory per pack under a user cache directory.

The root is ``$SAGE_LLM_CACHE_DIR`` when set, else platformdirs' user cache dir for
``sage-llm``. A pack directory only ever appears complete: it is built in a temporary sibling
and renamed into place, and it carries a ``sage-pack.json`` manifest recording the sha256 of
what it was built from, so a changed pack definition is never mistaken for a cached one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sage.llm.models.packs import ModelPack

CACHE_ENV = "SAGE_LLM_CACHE_DIR"
MANIFEST = "sage-pack.json"


def cache_root() -> Path:
    """The cache root (not created here)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("sage-llm", appauthor=False))


def models_dir() -> Path:
    return cache_root() / "models"


def pack_dir(pack: ModelPack) -> Path:
    return models_dir() / pack.name


def pack_fingerprint(pack: ModelPack) -> dict[str, str]:
    """What the cached directory must have been built from: file name -> sha256."""
    return {f.name: f.sha256 for f in pack.files}


def read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((path / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def cached_path(pack: ModelPack) -> Path | None:
    """The ready directory of ``pack``, or None when it is missing or from another definition."""
    path = pack_dir(pack)
    manifest = read_manifest(path)
    if manifest is None or manifest.get("sources") != pack_fingerprint(pack):
        return None
    if not (path / "config.json").is_file():
        return None
    return path
