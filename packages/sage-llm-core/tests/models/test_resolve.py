"""resolve_model: local directories, GGUF paths, pack names (pulled on demand), hub ids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sage.llm.models import ModelError, UnknownModelError, list_packs, resolve_model

FakePackFactory = Callable[..., Any]  # the make_pack fixture (see conftest.py)


@pytest.mark.usefixtures("isolated_cache")
def test_local_directory_is_returned_as_is(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model(tmp_path) == tmp_path
    assert resolve_model(str(tmp_path)) == tmp_path


@pytest.mark.usefixtures("isolated_cache")
def test_directory_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"has no config\.json"):
        resolve_model(tmp_path)


@pytest.mark.usefixtures("isolated_cache")
def test_missing_gguf_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(tmp_path / "model.gguf")


@pytest.mark.usefixtures("isolated_cache")
def test_unknown_name_lists_packs() -> None:
    with pytest.raises(UnknownModelError) as info:
        resolve_model("no-such-model")
    for pack in list_packs():
        assert pack.name in str(info.value)


@pytest.mark.usefixtures("isolated_cache")
def test_missing_local_path_says_so(tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError, match="No file or directory"):
        resolve_model(str(tmp_path / "nothing" / "here"))


@pytest.mark.usefixtures("isolated_cache")
def test_offline_hub_id_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    constants = pytest.importorskip("huggingface_hub.constants")
    # The resolver reads huggingface_hub's own parsed flag, not the environment again.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UnknownModelError, match="HF_HUB_OFFLINE is set"):
        resolve_model("some-org/some-model-that-is-not-cached")


@pytest.mark.usefixtures("isolated_cache")
def test_unreachable_hub_id_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # refused at once
    with pytest.raises(UnknownModelError) as info:
        resolve_model("some-org/some-model-that-is-not-cached")
    message = str(info.value)
    assert "unreachable" in message
    assert "model pack or a local path" in message


@pytest.mark.usefixtures("isolated_cache")
def test_download_false_never_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    from sage.llm.models import resolve as resolve_module

    monkeypatch.setattr(resolve_module, "_hub_reachable", lambda: pytest.fail("not asked"))
    with pytest.raises(UnknownModelError, match="downloading is off"):
        resolve_model("some-org/some-model", download=False)


def test_pack_name_is_pulled_on_demand(
    make_pack: FakePackFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = make_pack()
    with pytest.raises(ModelError, match="sage-llm models pull"):
        resolve_model(fake.name, pull=False)
    path = resolve_model(f"{fake.name}-alias")
    assert (path / "config.json").read_bytes() == fake.files["config.json"]
    assert "not cached yet" in capsys.readouterr().err
    assert resolve_model(fake.name, pull=False) == path


def test_pulled_pack_loads_with_from_pretrained(make_pack: FakePackFactory, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    src = tmp_path / "src"
    model.save_pretrained(src)
    files = {p.name: p.read_bytes() for p in src.iterdir() if p.is_file()}
    fake = make_pack(files, name="tiny-llama")
    loaded = transformers.AutoModelForCausalLM.from_pretrained(resolve_model(fake.name)).eval()
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)


@pytest.mark.usefixtures("isolated_cache")
def test_hub_false_never_tries_the_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    from sage.llm.models import resolve as resolve_module

    def no_hub(repo_id: str) -> None:
        raise AssertionError("hub=False must not contact a hub")

    monkeypatch.setattr(resolve_module, "_from_hub", no_hub)
    with pytest.raises(UnknownModelError, match="Model packs:"):
        resolve_model("some-org/some-model", hub=False)
