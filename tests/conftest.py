"""Fresh virtualenvs holding only built wheels, and plugin projects built on the fly.

These tests are what a user sees after ``pip install``: no source tree on sys.path, no
editable installs. They need the wheels from ``nox -s wheels`` (directory ``SAGE_LLM_DIST``,
default ``dist/``) and a Python with ``hatchling`` to build the throw-away plugins.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import venv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIST = Path(os.environ.get("SAGE_LLM_DIST", ROOT / "dist"))
EXAMPLE_PLUGIN = ROOT / "examples" / "sage-llm-strategy-lookahead-example"


def wheel(name: str) -> Path:
    stem = name.replace("-", "_")
    found = sorted(DIST.glob(f"{stem}-*.whl"))
    if not found:
        pytest.fail(f"no wheel for {name} in {DIST}: run `nox -s wheels` first")
    return found[-1]


@dataclass
class Venv:
    path: Path

    @property
    def bin(self) -> Path:
        return self.path / ("Scripts" if os.name == "nt" else "bin")

    def run(
        self, *args: str, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("SAGE_LLM_")}
        full_env.pop("PYTHONPATH", None)
        full_env.update(env or {})
        proc = subprocess.run(args, capture_output=True, text=True, env=full_env, cwd=self.path)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def pip_install(self, *args: str | Path) -> None:
        self.run(
            str(self.bin / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--find-links",
            str(DIST),
            *map(str, args),
        )

    def python(self, code: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.bin / "python"), "-c", textwrap.dedent(code), **kw)

    def sage_llm(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.bin / "sage-llm"), *args, **kw)

    def strategies_json(self, **kw: Any) -> dict[str, dict[str, Any]]:
        out = self.sage_llm("strategies", "list", "--json", **kw).stdout
        return {row["name"]: row for row in json.loads(out)}


def make_venv(path: Path) -> Venv:
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return Venv(path)


def build_plugin(
    tmp: Path,
    dist: str,
    module: str,
    source: str,
    entry_points: str,
    requires: str = "sage-llm-core>=1.0,<2",
) -> Path:
    """Write a one-module plugin project and build its wheel with hatchling."""
    project = tmp / dist
    (project / module).mkdir(parents=True)
    (project / module / "__init__.py").write_text(textwrap.dedent(source))
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"
            [project]
            name = "{dist}"
            version = "0.1.0"
            dependencies = ["{requires}"]
            [project.entry-points."sage.llm.speculative"]
            {entry_points}
            [tool.hatch.build.targets.wheel]
            packages = ["{module}"]
            """
        )
    )
    return build_wheel(project, tmp / f"wheels-{dist}")


def build_wheel(project: Path, out: Path) -> Path:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(project),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise AssertionError(f"building {project} failed (needs hatchling):\n{proc.stderr}")
    (built,) = out.glob("*.whl")  # one project per output directory
    return built


@pytest.fixture(scope="session")
def core_only(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    env = make_venv(tmp_path_factory.mktemp("core-only") / "venv")
    env.pip_install(wheel("sage-llm-core"))
    return env


@pytest.fixture(scope="session")
def dynamic_only(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    env = make_venv(tmp_path_factory.mktemp("dynamic-only") / "venv")
    env.pip_install(wheel("sage-llm-strategy-dynamic"))  # the core comes as a dependency
    return env


@pytest.fixture(scope="session")
def full(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    tmp = tmp_path_factory.mktemp("full")
    env = make_venv(tmp / "venv")
    example = build_wheel(EXAMPLE_PLUGIN, tmp / "wheels-example")
    env.pip_install(
        wheel("sage-llm-strategy-ngram"),
        wheel("sage-llm-strategy-draft"),
        wheel("sage-llm-strategy-dynamic"),
        example,
    )
    return env


BROKEN_SOURCE = """
import a_module_that_does_not_exist  # the plugin's own bug
"""

FORK_SOURCE = """
from dataclasses import dataclass
from typing import ClassVar
from sage.llm import SpeculativeStrategy

@dataclass(frozen=True, kw_only=True)
class ForkedNgram(SpeculativeStrategy):
    \"\"\"A fork that registers the name 'ngram' again.\"\"\"
    name: ClassVar[str] = "ngram"
    def apply(self, engine_config):
        self.speculative_config(engine_config).update(method="ngram", num_speculative_tokens=2)
"""

FUTURE_SOURCE = """
raise RuntimeError("an incompatible plugin must not even be imported")
"""


@pytest.fixture(scope="session")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """The built-ins plus a broken, a duplicate-name and an incompatible plugin."""
    tmp = tmp_path_factory.mktemp("messy")
    env = make_venv(tmp / "venv")
    broken = build_plugin(
        tmp, "broken-plugin", "broken_plugin", BROKEN_SOURCE, 'broken = "broken_plugin:Broken"'
    )
    fork = build_plugin(
        tmp, "ngram-fork", "ngram_fork", FORK_SOURCE, 'ngram = "ngram_fork:ForkedNgram"'
    )
    future = build_plugin(
        tmp,
        "future-plugin",
        "future_plugin",
        FUTURE_SOURCE,
        'future = "future_plugin:Future"',
        requires="sage-llm-core>=2.0",
    )
    env.pip_install(
        wheel("sage-llm-strategy-ngram"),
        wheel("sage-llm-strategy-draft"),
        wheel("sage-llm-strategy-dynamic"),
        broken,
        fork,
    )
    # pip refuses the incompatible plugin's requirement, as it should; force it in as a stale
    # install would be (for example after a core upgrade).
    env.pip_install("--no-deps", future)
    return env


SQUATTER_SOURCE = """
print("squatter imported")
from sage.llm import SpeculativeStrategy

class NgramStrategy(SpeculativeStrategy):
    \"\"\"A third party's class that shares the seed's class name.\"\"\"
    def apply(self, engine_config):
        self.speculative_config(engine_config).update(method="ngram", num_speculative_tokens=1)
"""

CHATTY_SOURCE = """
print("chatty plugin says hello")
from sage.llm import SpeculativeStrategy

class Chatty(SpeculativeStrategy):
    def apply(self, engine_config):
        print("chatty apply")
        self.speculative_config(engine_config).update(method="ngram", num_speculative_tokens=2)
"""


@pytest.fixture(scope="session")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """The built-ins from wheels plus hostile distributions (issue 10), also real wheels."""
    from sage.llm.testing.fake_plugins import build_wheel as fake_wheel

    tmp = tmp_path_factory.mktemp("hostile")
    env = make_venv(tmp / "venv")
    out = tmp / "wheels"
    hostile_wheels = [
        fake_wheel(out, "bad-value", {"bad": "this is :: not a valid reference"}),
        fake_wheel(
            out,
            "exiter",
            {"exiter": "exiter_mod:X"},
            "import sys\nsys.exit(3)\n",
            module="exiter_mod",
        ),
        fake_wheel(
            out, "chatty", {"chatty": "chatty_mod:Chatty"}, CHATTY_SOURCE, module="chatty_mod"
        ),
        fake_wheel(
            out,
            "squatter",
            {"squat": "squat_mod:NgramStrategy"},
            SQUATTER_SOURCE,
            module="squat_mod",
            aliases={"ngram": "squat"},
        ),
    ]
    env.pip_install(
        wheel("sage-llm-strategy-ngram"),
        wheel("sage-llm-strategy-draft"),
        wheel("sage-llm-strategy-dynamic"),
        *hostile_wheels,
    )
    return env
