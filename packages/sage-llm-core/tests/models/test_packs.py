"""Model packs are data: the built-in ones are well formed, bad definitions fail clearly."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from sage.llm.models import (
    ModelPackDefinitionError,
    UnknownModelError,
    default_pack_name,
    find_pack,
    get_pack,
    list_packs,
)
from sage.llm.models.packs import parse_pack

VALID: dict[str, Any] = {
    "name": "ok-pack",
    "format": "gguf",
    "license": "MIT",
    "upstream": "org/model",
    "files": [
        {
            "name": "model.gguf",
            "size": 10,
            "sha256": "0" * 64,
            "parts": [{"package": "some-pkg", "version": "1.2.3", "path": "some_pkg/m.gguf"}],
        }
    ],
}


@pytest.mark.usefixtures("isolated_cache")
def test_builtin_packs_are_pinned_and_verifiable() -> None:
    packs = list_packs()
    assert packs, "the built-in packs.json must define packs"
    for pack in packs:
        assert pack.license
        assert pack.upstream
        for spec in pack.files:
            assert len(spec.sha256) == 64
            assert spec.size > 0
            for part in spec.parts:
                assert part.version[0].isdigit()
        assert all("==" in r for r in pack.requirements)
        assert len(set(pack.requirements)) == len(pack.requirements)
    assert find_pack(default_pack_name()) is not None


@pytest.mark.usefixtures("isolated_cache")
def test_draft_suggestion_points_at_a_pack() -> None:
    for pack in list_packs():
        if pack.suggested_draft:
            assert find_pack(pack.suggested_draft) is not None


@pytest.mark.usefixtures("isolated_cache")
def test_aliases_and_case_resolve_to_the_same_pack() -> None:
    for pack in list_packs():
        for alias in pack.aliases:
            assert get_pack(alias) == pack
        assert get_pack(pack.name.upper()) == pack


@pytest.mark.usefixtures("isolated_cache")
def test_unknown_pack_lists_available_and_suggests() -> None:
    default = default_pack_name()
    with pytest.raises(UnknownModelError) as info:
        get_pack(default[:-1])
    message = str(info.value)
    for pack in list_packs():
        assert pack.name in message
    assert f"Did you mean: '{default}'" in message
    assert isinstance(info.value, LookupError)


def _bad(**changes: Any) -> dict[str, Any]:
    obj = copy.deepcopy(VALID)
    for key, value in changes.items():
        if key.startswith("file_"):
            obj["files"][0][key[5:]] = value
        elif key.startswith("part_"):
            obj["files"][0]["parts"][0][key[5:]] = value
        elif value is None:
            obj.pop(key)
        else:
            obj[key] = value
    return obj


def test_valid_definition_parses() -> None:
    pack = parse_pack(VALID, "test")
    assert pack.requirements == ["some-pkg==1.2.3"]
    assert pack.size == 10


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"license": None}, "missing required field 'license'"),
        ({"format": "onnx"}, "format must be one of"),
        ({"name": "Bad Name"}, "name must be lowercase"),
        ({"file_sha256": "abc"}, "64 lowercase hex"),
        ({"file_size": 0}, "size must be a positive"),
        ({"file_size": "10"}, "'size' must be int"),
        ({"file_parts": []}, "at least one part"),
        ({"part_version": ">=1.0"}, "one exact version"),
        ({"part_path": "../etc/passwd"}, "must be a relative path inside the wheel"),
        ({"file_name": "model.bin"}, "exactly one '*.gguf' file"),
        ({"files": []}, "at least one file"),
    ],
)
def test_invalid_definitions_say_what_is_wrong(changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(ModelPackDefinitionError) as info:
        parse_pack(_bad(**changes), "test.json")
    assert expected in str(info.value)
    assert "test.json" in str(info.value)


def test_transformers_pack_needs_config() -> None:
    obj = _bad(format="transformers")
    with pytest.raises(ModelPackDefinitionError, match=r"needs a config\.json"):
        parse_pack(obj, "test")


def test_extra_packs_file_is_read_and_duplicates_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = tmp_path / "packs.json"
    extra.write_text(json.dumps({"packs": [VALID]}))
    monkeypatch.setenv("SAGE_LLM_MODEL_PACKS", str(extra))
    assert get_pack("ok-pack").source == str(extra)
    clash = dict(VALID, name="other", aliases=[default_pack_name()])
    extra.write_text(json.dumps({"packs": [clash]}))
    with pytest.raises(ModelPackDefinitionError, match="defined twice"):
        list_packs()


def test_unreadable_extra_packs_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGE_LLM_MODEL_PACKS", str(tmp_path / "missing.json"))
    with pytest.raises(ModelPackDefinitionError, match="SAGE_LLM_MODEL_PACKS: cannot read"):
        list_packs()
    (tmp_path / "bad.json").write_text('{"nopacks": 1}')
    monkeypatch.setenv("SAGE_LLM_MODEL_PACKS", str(tmp_path / "bad.json"))
    with pytest.raises(ModelPackDefinitionError, match="'packs' list"):
        list_packs()
