"""Benchmark: what ``import sage.llm`` and one named lookup cost in a fresh process.

Builds a venv from the wheels in ``--dist`` (core + ngram), measures in fresh interpreters
(median of ``--runs``), then installs 100 dummy strategy plugins and measures again, checking that
resolving ``ngram`` imported none of them. Prints a table and writes JSON.

    nox -s wheels importtime
    python benchmarks/import_time.py --dist dist --runs 15
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sysconfig
import tempfile
import venv
from pathlib import Path

PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import sage.llm
t1 = time.perf_counter()
from sage.llm import get_strategy
s = get_strategy("ngram")
t2 = time.perf_counter()
dummies = sorted(m for m in sys.modules if m.startswith("sage_dummy_plugin_"))
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "vllm"))
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "lookup_ms": (t2 - t1) * 1e3,
                  "dummies_imported": len(dummies), "heavy": heavy}))
"""

DUMMY = """
from sage.llm import SpeculativeStrategy

class Dummy(SpeculativeStrategy):
    def apply(self, engine_config):
        self.speculative_config(engine_config).update(method="ngram", num_speculative_tokens=1)
"""


def add_dummy_plugins(env: Path, count: int) -> None:
    """Write ``count`` installed distributions (module + dist-info) straight into site-packages."""
    purelib = Path(sysconfig.get_paths(vars={"base": str(env), "platbase": str(env)})["purelib"])
    for i in range(count):
        name = f"sage_dummy_plugin_{i}"
        (purelib / f"{name}.py").write_text(DUMMY)
        info = purelib / f"sage_dummy_plugin_{i}-1.0.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: sage-dummy-plugin-{i}\nVersion: 1.0\n"
            "Requires-Dist: sage-llm-core>=1.0,<2\n"
        )
        (info / "entry_points.txt").write_text(
            f"[sage.llm.speculative]\ndummy-{i} = {name}:Dummy\n"
        )
        (info / "RECORD").write_text("")


def measure(python: Path, runs: int) -> dict[str, float | int | list[str]]:
    samples = []
    for _ in range(runs):
        out = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True, check=True)
        samples.append(json.loads(out.stdout))
    return {
        "import_ms_median": statistics.median(s["import_ms"] for s in samples),
        "lookup_ms_median": statistics.median(s["lookup_ms"] for s in samples),
        "import_ms_min": min(s["import_ms"] for s in samples),
        "lookup_ms_min": min(s["lookup_ms"] for s in samples),
        "dummies_imported": max(s["dummies_imported"] for s in samples),
        "heavy_modules": samples[0]["heavy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dist", type=Path, default=Path("dist"))
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--plugins", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("bench-results/import_time.json"))
    args = parser.parse_args()

    wheels = [
        str(next(args.dist.glob(f"{name}-*.whl")))
        for name in ("sage_llm_core", "sage_llm_strategy_ngram")
    ]
    with tempfile.TemporaryDirectory() as tmp:
        env = Path(tmp) / "venv"
        venv.EnvBuilder(with_pip=True).create(env)
        python = env / "bin" / "python"
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--find-links", str(args.dist), *wheels],
            check=True,
        )
        results = {"plugins_0": measure(python, args.runs)}
        add_dummy_plugins(env, args.plugins)
        results[f"plugins_{args.plugins}"] = measure(python, args.runs)

    print(
        f"{'installed plugins':>18} | {'import sage.llm':>16} | {'get_strategy(ngram)':>20} | "
        "dummy modules imported"
    )
    for key, r in results.items():
        print(
            f"{key.split('_')[1]:>18} | {r['import_ms_median']:>13.1f} ms | "
            f"{r['lookup_ms_median']:>17.1f} ms | {r['dummies_imported']}"
        )
        assert r["heavy_modules"] == [], r["heavy_modules"]
    assert results[f"plugins_{args.plugins}"]["dummies_imported"] == 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": args.runs, "results": results}, indent=2))
    print(f"medians of {args.runs} fresh processes; JSON: {args.out}")


if __name__ == "__main__":
    main()
