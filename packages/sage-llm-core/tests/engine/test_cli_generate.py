"""``sage-llm generate`` on a tiny saved model: streaming, JSON, strategies and errors."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sage.llm.cli.main import cli
from sage.llm.testing.fake_plugins import FakePlugins

PROMPT = "abc abc abc abc"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["generate", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_json_output_has_text_ids_and_metrics(model_dir: Path) -> None:
    code, out, _ = run(PROMPT, "--model", str(model_dir), "--max-tokens", "12", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {"text", "token_ids", "metrics", "speedup", "finish_reason"}
    assert 1 <= len(data["token_ids"]) <= 12
    assert data["metrics"]["num_generated_tokens"] == len(data["token_ids"])
    assert data["strategy"] == "ngram"
    assert data["baseline"]["matches_plain_greedy"] is True
    assert set(data["host_load"]) == {"other_share", "load_average", "cores", "busy"}


def test_a_speedup_measured_on_a_busy_machine_says_so(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sage.llm.bench import host_load

    busy = host_load.HostLoad(other_share=0.8, load_average=6.0, cores=2)
    monkeypatch.setattr(host_load.HostLoadMeter, "stop", lambda self: busy)
    code, _, err = run(PROMPT, "--model", str(model_dir), "--max-tokens", "12")
    assert code == 0
    assert "speedup ~" in err
    assert "note: measured on a busy machine (other processes used 80% of its 2 cores)" in err


def test_ngram_and_plain_agree_token_for_token(model_dir: Path) -> None:
    common = [PROMPT, "--model", str(model_dir), "--max-tokens", "16", "--json"]
    _, spec, _ = run(*common, "--strategy", "ngram:n=2,num_speculative_tokens=3")
    _, plain, _ = run(*common, "--strategy", "none")
    assert json.loads(spec)["token_ids"] == json.loads(plain)["token_ids"]
    assert json.loads(plain)["speedup"] is None


def test_weight_layout_option_reaches_the_loader(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sage.llm.engines.transformers import layout

    calls: list[str] = []
    real = layout.wants_column_major

    def spy(model: object, weight_layout: layout.WeightLayout = "auto") -> bool:
        calls.append(weight_layout)
        return real(model, weight_layout)

    monkeypatch.setattr("sage.llm.engines.transformers.loading.wants_column_major", spy)
    common = [PROMPT, "--model", str(model_dir), "--max-tokens", "12", "--json"]
    _, row, _ = run(*common, "--weight-layout", "row")
    _, auto, _ = run(*common)
    assert calls == ["row", "auto"]
    assert json.loads(row)["token_ids"] == json.loads(auto)["token_ids"]
    bad = CliRunner().invoke(cli, ["generate", *common, "--weight-layout", "diag"])
    assert bad.exit_code == 2
    assert "'diag' is not one of 'auto', 'column', 'row'" in bad.output


def test_streams_text_then_prints_the_numbers(model_dir: Path) -> None:
    code, out, err = run(PROMPT, "--model", str(model_dir), "--max-tokens", "10", "--no-chat")
    assert code == 0
    assert "tokens/s" in err
    assert "speedup" in err
    _, data, _ = run(PROMPT, "--model", str(model_dir), "--max-tokens", "10", "--no-chat", "--json")
    assert out.strip() == json.loads(data)["text"].strip()


def test_draft_model_option(model_dir: Path, draft_dir: Path) -> None:
    code, out, _ = run(
        PROMPT,
        "--model",
        str(model_dir),
        "--draft-model",
        str(draft_dir),
        "--max-tokens",
        "8",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["strategy"].startswith("draft:")
    assert data["metrics"]["num_drafts"] > 0


def test_sampling_with_seed_is_reproducible(model_dir: Path) -> None:
    args = [PROMPT, "--model", str(model_dir), "--max-tokens", "10", "--json"]
    args += ["--temperature", "0.8", "--top-p", "0.9", "--seed", "3"]
    first = json.loads(run(*args)[1])
    second = json.loads(run(*args)[1])
    assert first["token_ids"] == second["token_ids"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--temperature", "-1"], "temperature"),
        (["--max-tokens", "0"], "max-tokens"),
        (["--strategy", "nosuch"], "unknown speculative strategy"),
        (["--strategy", "ngram:n=0"], "n"),
        (["--strategy", "none", "--draft-model", "x"], "draft"),
        (["--strategy", "ngram", "--draft-model", "x"], "draft"),
        (["--engine", "vllm", "--weight-layout", "row"], "transformers engine only"),
        (["--device", "tpu"], "unknown device 'tpu'"),
    ],
)
def test_bad_input_is_a_clear_error(
    model_dir: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(["generate", PROMPT, "--model", str(model_dir), *args], capsys)
    assert code != 0
    assert message in err


def test_cuda_without_cuda_is_one_line(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, _, err = run_main(
        ["generate", PROMPT, "--model", str(model_dir), "--device", "cuda"], capsys
    )
    assert code != 0
    assert "device 'cuda' is not available" in err
    assert "Traceback" not in err


def test_unknown_model_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(["generate", PROMPT, "--model", str(tmp_path / "missing")], capsys)
    assert code == 2
    assert "not found" in err
    assert "Traceback" not in err


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run through ``main()`` (as the installed command does): library errors become exit 2."""
    import sys

    from sage.llm.cli.main import main

    old = sys.argv
    sys.argv = ["sage-llm", *argv]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return code, captured.out, captured.err


VLLM_ONLY = '''
from dataclasses import dataclass
from typing import ClassVar
from sage.llm import SpeculativeStrategy

@dataclass(frozen=True, kw_only=True)
class VllmOnly(SpeculativeStrategy):
    """Writes vLLM's engine arguments and nothing else."""
    name: ClassVar[str] = "vllm-only"

    def apply(self, engine_config):
        self.speculative_config(engine_config).update(method="ngram", num_speculative_tokens=2)
'''

DRAFTING = '''
from dataclasses import dataclass
from typing import ClassVar
from sage.llm import SpeculativeStrategy, param

@dataclass(frozen=True, kw_only=True)
class Drafting(SpeculativeStrategy):
    """A third party's draft-model strategy: its draft parameter has its own name."""
    name: ClassVar[str] = "drafting"
    helper: str = param(doc="the draft model", draft_model=True)
    k: int = param(3, doc="tokens per step", ge=1)

    def apply(self, engine_config):
        self.speculative_config(engine_config).update(
            method="draft_model", model=self.helper, num_speculative_tokens=self.k
        )
'''


def test_a_strategy_without_a_proposer_is_refused_before_the_model_loads(
    plugins: FakePlugins, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugins.add(
        "vllm-only-dist", {"vllm-only": "vllm_only:VllmOnly"}, VLLM_ONLY, module="vllm_only"
    )
    missing = str(tmp_path / "missing-model")
    code, _, err = run_main(["generate", PROMPT, "--model", missing, "-s", "vllm-only"], capsys)
    assert code != 0
    assert "'vllm-only' has no proposer for the reference engine" in err
    assert "--engine vllm" in err
    assert "make_proposer" in err
    assert "docs/plugin-authoring.md" in err
    assert "not found" not in err  # refused before the model was looked up


def test_draft_model_fills_the_parameter_a_strategy_declares(plugins: FakePlugins) -> None:
    """--draft-model goes where the strategy's declaration says, whatever its name; without
    --strategy, to the one installed strategy that needs a draft model."""
    from sage.llm.cli.generate import _strategy_spec

    plugins.add("drafting-dist", {"drafting": "drafting:Drafting"}, DRAFTING, module="drafting")
    plugins.add(
        "vllm-only-dist", {"vllm-only": "vllm_only:VllmOnly"}, VLLM_ONLY, module="vllm_only"
    )
    assert _strategy_spec("drafting:k=2", "tiny", explicit=True) == "drafting:k=2,helper=tiny"
    assert _strategy_spec("ignored", "tiny", explicit=False) == "drafting:helper=tiny"
    with pytest.raises(click.UsageError, match=r"propose with a draft model \(drafting\)"):
        _strategy_spec("vllm-only", "tiny", explicit=True)


def test_draft_model_without_strategy_needs_exactly_one_taker(plugins: FakePlugins) -> None:
    from sage.llm.cli.generate import _strategy_spec

    plugins.add(
        "vllm-only-dist", {"vllm-only": "vllm_only:VllmOnly"}, VLLM_ONLY, module="vllm_only"
    )
    with pytest.raises(click.UsageError, match="pass --strategy"):
        _strategy_spec("vllm-only", "tiny", explicit=False)
