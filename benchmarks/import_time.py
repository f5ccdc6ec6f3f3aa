"""Benchmark: what ``import sage.llm`` plus one named lookup costs a fresh process.

Builds a venv from the wheels in ``--dist`` (core + ngram) and times, in fresh interpreters,
``python -c pass`` (bare) and ``python -c "import sage.llm; sage.llm.get_strategy('ngram')"``,
alternating the two so that machine noise hits both alike; the figure is the difference of the
medians. It then repeats with ``--extra`` unrelated distributions installed (a big environment),
and with as many dummy strategy plugins, checking that resolving ``ngram`` imported none of them
and no heavy module (torch, transformers, vllm). Prints a table and writes JSON.

    nox -s wheels importtime
    python benchmarks/import_time.py --dist dist --runs 15

Goal (issue 10): at most 40 ms over bare python, and at most 10 ms more with 100 unrelated
distributions installed. Shared machines are noisy: compare rows of one run, not across runs.
Where ``valgrind`` is installed, each row also counts the instructions the probe executes beyond
bare python (callgrind), which does not depend on how busy the machine is; ``--baseline-dist``
adds a row for an older core wheel so that the count can be read as a ratio to it.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import statistics
import subprocess
import sysconfig
import tempfile
import time
import venv
from pathlib import Path
from typing import Any

PROBE = "import sage.llm; sage.llm.get_strategy('ngram')"

DETAIL = r"""
import json, sys, time
t0 = time.perf_counter()
import sage.llm
t1 = time.perf_counter()
s = sage.llm.get_strategy("ngram")
t2 = time.perf_counter()
dummies = sorted(m for m in sys.modules if m.startswith("sage_dummy_plugin_"))
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "vllm"))
lazy = sorted(m for m in ("pluggy", "packaging.requirements") if m in sys.modules)
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "lookup_ms": (t2 - t1) * 1e3,
                  "dummies_imported": len(dummies), "heavy": heavy, "loaded": lazy}))
"""

DUMMY = """
from sage.llm import SpeculativeStrategy

class Dummy(SpeculativeStrategy):
    def apply(self, engine_config):
        self.speculative_config(engine_config).update(method="ngram", num_speculative_tokens=1)
"""


def _purelib(env: Path) -> Path:
    return Path(sysconfig.get_paths(vars={"base": str(env), "platbase": str(env)})["purelib"])


def _write_dist(purelib: Path, name: str, entry_points: str = "") -> None:
    info = purelib / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\nRequires-Dist: requests>=2\n"
    )
    (info / "RECORD").write_text("")
    if entry_points:
        (info / "entry_points.txt").write_text(entry_points)


def add_unrelated(env: Path, count: int) -> None:
    """``count`` installed distributions that have nothing to do with sage-llm (some with
    console scripts, as many real ones have)."""
    purelib = _purelib(env)
    for i in range(count):
        scripts = f"[console_scripts]\nunrelated-{i} = unrelated_{i}:main\n" if i % 2 else ""
        _write_dist(purelib, f"unrelated-dist-{i}", scripts)


def add_dummy_plugins(env: Path, count: int) -> None:
    """``count`` strategy plugins (module + dist-info) that must never be imported."""
    purelib = _purelib(env)
    for i in range(count):
        name = f"sage_dummy_plugin_{i}"
        (purelib / f"{name}.py").write_text(DUMMY)
        _write_dist(
            purelib,
            f"sage-dummy-plugin-{i}",
            f"[sage.llm.speculative]\ndummy-{i} = {name}:Dummy\n",
        )


def _run_ms(python: Path, code: str) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one fresh interpreter running ``code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([str(python), "-c", code], check=True, capture_output=True)
    wall = (time.perf_counter() - t0) * 1e3
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1e3
    return wall, cpu


def _instructions(python: Path, code: str) -> int | None:
    """Instructions executed by a fresh interpreter running ``code`` (valgrind callgrind)."""
    if shutil.which("valgrind") is None:
        return None
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", str(python), "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Collected : (\d+)", proc.stderr)
    return int(match.group(1)) if match else None


def extra_instructions(python: Path) -> float | None:
    """Millions of instructions the probe executes beyond ``python -c pass``."""
    bare, probe = _instructions(python, "pass"), _instructions(python, PROBE)
    return None if bare is None or probe is None else (probe - bare) / 1e6


def measure(python: Path, runs: int) -> dict[str, Any]:
    bare, probe, bare_cpu, probe_cpu = [], [], [], []
    _run_ms(python, PROBE)  # warm the bytecode caches once
    for _ in range(runs):
        wall, cpu = _run_ms(python, "pass")
        bare.append(wall)
        bare_cpu.append(cpu)
        wall, cpu = _run_ms(python, PROBE)
        probe.append(wall)
        probe_cpu.append(cpu)
    details = [
        json.loads(
            subprocess.run(
                [str(python), "-c", DETAIL], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(min(runs, 5))
    ]
    return {
        "bare_ms_median": statistics.median(bare),
        "probe_ms_median": statistics.median(probe),
        "over_bare_ms": statistics.median(probe) - statistics.median(bare),
        "over_bare_cpu_ms": statistics.median(probe_cpu) - statistics.median(bare_cpu),
        "import_ms_median": statistics.median(d["import_ms"] for d in details),
        "lookup_ms_median": statistics.median(d["lookup_ms"] for d in details),
        "dummies_imported": max(d["dummies_imported"] for d in details),
        "heavy_modules": details[0]["heavy"],
        "lazy_modules_loaded": details[0]["loaded"],
        "extra_instructions_m": extra_instructions(python),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dist", type=Path, default=Path("dist"))
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--extra", type=int, default=100, help="unrelated dists / plugins")
    parser.add_argument("--out", type=Path, default=Path("bench-results/import_time.json"))
    parser.add_argument(
        "--baseline-dist", type=Path, help="a folder with an older sage_llm_core wheel to compare"
    )
    args = parser.parse_args()

    wheels = [
        str(next(args.dist.glob(f"{name}-*.whl")))
        for name in ("sage_llm_core", "sage_llm_strategy_ngram")
    ]
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = Path(tmp) / "venv"
        venv.EnvBuilder(with_pip=True).create(env)
        python = env / "bin" / "python"
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--find-links", str(args.dist), *wheels],
            check=True,
        )
        results["core + ngram"] = measure(python, args.runs)
        if args.baseline_dist is not None:
            old = next(args.baseline_dist.glob("sage_llm_core-*.whl"))
            base_env = Path(tmp) / "baseline"
            venv.EnvBuilder(with_pip=True).create(base_env)
            base_python = base_env / "bin" / "python"
            subprocess.run(
                [
                    str(base_python),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--find-links",
                    str(args.dist),
                    str(old),
                    wheels[1],
                ],
                check=True,
            )
            results["baseline core + ngram"] = measure(base_python, args.runs)
        add_unrelated(env, args.extra)
        results[f"+ {args.extra} unrelated distributions"] = measure(python, args.runs)
        add_dummy_plugins(env, args.extra)
        results[f"+ {args.extra} dummy strategy plugins"] = measure(python, args.runs)

    base = results["core + ngram"]
    print(
        f"{'environment':>36} | {'bare python':>11} | {'import + get_strategy':>21} | "
        f"{'over bare':>9} | {'vs row 1':>9} | {'over bare (CPU)':>15} | {'vs row 1':>9} | "
        "extra instructions | dummies imported"
    )
    for key, r in results.items():
        print(
            f"{key:>36} | {r['bare_ms_median']:>8.1f} ms | {r['probe_ms_median']:>18.1f} ms | "
            f"{r['over_bare_ms']:>6.1f} ms | {r['over_bare_ms'] - base['over_bare_ms']:>+6.1f} ms"
            f" | {r['over_bare_cpu_ms']:>12.1f} ms | "
            f"{r['over_bare_cpu_ms'] - base['over_bare_cpu_ms']:>+6.1f} ms | "
            + (
                f"{r['extra_instructions_m']:>16.0f} M"
                if r["extra_instructions_m"] is not None
                else f"{'(no valgrind)':>18}"
            )
            + f" | {r['dummies_imported']}"
        )
        assert r["heavy_modules"] == [], r["heavy_modules"]
        assert r["dummies_imported"] == 0, "resolving 'ngram' imported another plugin"
    print(
        f"medians of {args.runs} fresh processes each, bare and probe alternating (wall time, "
        "and CPU time, which a loaded machine inflates less); in-process "
        f"import {results['core + ngram']['import_ms_median']:.1f} ms + lookup "
        f"{results['core + ngram']['lookup_ms_median']:.1f} ms; lazily loaded modules on this "
        f"path: {results['core + ngram']['lazy_modules_loaded'] or 'none'}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": args.runs, "results": results}, indent=2))
    print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()
