"""Load benchmark of the scheduling policies over HTTP: throughput and latency by concurrency.

    python benchmarks/serve_load.py                       # default pack, reference engine
    python benchmarks/serve_load.py --levels 1,4 --requests 8 --max-tokens 32   # quick

One server on loopback serves three engines of the same model, one per policy (``always``,
``never``, ``adaptive``), all with the same strategy (``--adaptive-strategy`` may give the
adaptive engine another: on vLLM, the one that switches by load inside the engine). For each
concurrency level the policies run the same prompts in ``--rounds`` slices, every policy in
every slice, in rotating order, so drift in the machine's speed hits them alike:
``--requests`` requests from that many concurrent clients, greedy,
``--max-tokens`` each (after ``--warmup`` untimed requests per policy, which give a
learning policy its warm-up outside the table). Throughput is completion tokens / wall time
of the level; latencies are per request as the client sees them. Bounded: ``--time-limit``
seconds in all, after which the remaining cells are skipped and reported as such. Prints a
table; writes JSON and a PNG plot. The machine is shared and noisy: compare policies within
one run, not across runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ("always", "never", "adaptive")


def prompts(limit_chars: int) -> list[str]:
    """The main job's code-edit prompt and one short Spec-Bench question per category."""
    from sage.llm.bench.questions import load_questions

    chosen = [(ROOT / "scripts" / "prompts" / "code_edit.txt").read_text()]
    seen: set[str] = set()
    for q in load_questions():
        if q.category not in seen and len(q.prompt) <= limit_chars:
            seen.add(q.category)
            chosen.append(q.prompt)
    return chosen


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def run_level(
    url: str, policy: str, concurrency: int, work: list[str], max_tokens: int
) -> dict[str, Any]:
    import httpx

    def one(prompt: str) -> tuple[float, int, bool, float | None]:
        body = {
            "model": policy,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        start = time.perf_counter()
        response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=600)
        response.raise_for_status()
        data = response.json()
        ext = data["sage_llm"]
        return (
            time.perf_counter() - start,
            data["usage"]["completion_tokens"],
            ext["speculative"],
            ext["ttft_s"],
        )

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, work))
    return summarize_cell(policy, concurrency, results, time.perf_counter() - start)


def summarize_cell(
    policy: str, concurrency: int, results: list[tuple[float, int, bool, float | None]], wall: float
) -> dict[str, Any]:
    latencies = [r[0] for r in results]
    tokens = sum(r[1] for r in results)
    ttfts = [r[3] for r in results if r[3] is not None]
    return {
        "policy": policy,
        "concurrency": concurrency,
        "requests": len(results),
        "completion_tokens": tokens,
        "wall_s": wall,
        "throughput_tokens_per_s": tokens / wall,
        "latency_p50_s": percentile(latencies, 0.5),
        "latency_p99_s": percentile(latencies, 0.99),
        "ttft_p50_s": percentile(ttfts, 0.5) if ttfts else None,
        "speculative_share": sum(r[2] for r in results) / len(results),
        "results": results,
    }


def run_rounds(
    url: str, concurrency: int, work: list[str], max_tokens: int, rounds: int
) -> dict[str, dict[str, Any]]:
    """The level's requests in ``rounds`` slices; in each, every policy runs the slice, in an
    order that rotates from round to round, so a drift of the machine's speed within the
    level falls on all policies alike. A policy's cell pools its slices."""
    size = math.ceil(len(work) / rounds)
    slices = [work[i : i + size] for i in range(0, len(work), size)]
    parts: dict[str, list[dict[str, Any]]] = {p: [] for p in POLICIES}
    for r, chunk in enumerate(slices):
        order = POLICIES[r % len(POLICIES) :] + POLICIES[: r % len(POLICIES)]
        for policy in order:
            parts[policy].append(run_level(url, policy, concurrency, chunk, max_tokens))
    cells = {}
    for policy, done in parts.items():
        results = [x for part in done for x in part["results"]]
        cells[policy] = summarize_cell(
            policy, concurrency, results, sum(part["wall_s"] for part in done)
        )
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="default: the default model pack")
    parser.add_argument("--strategy", default="ngram")
    parser.add_argument(
        "--adaptive-strategy",
        default=None,
        help="the adaptive engine's strategy (default: --strategy). On vLLM, per-step load "
        "switching needs one that adapts inside the engine: dynamic-lookahead (mode=adaptive)",
    )
    parser.add_argument("--engine", default="transformers", choices=["transformers", "vllm"])
    parser.add_argument("--levels", default="1,2,4,8,16")
    parser.add_argument("--requests", type=int, default=16, help="requests per cell")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--prompt-chars", type=int, default=1200)
    parser.add_argument(
        "--warmup",
        type=int,
        default=0,
        help="requests per policy at concurrency 1 before the levels, not in the table "
        "(adaptive's warm-up; reported in the JSON)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="slices of each level's requests, the policies interleaved per slice (at most "
        "requests / concurrency, so every slice keeps every client busy)",
    )
    parser.add_argument("--time-limit", type=float, default=1800.0, help="seconds in all")
    parser.add_argument("--engine-arg", action="append", default=[], help="KEY=JSON for the engine")
    parser.add_argument("--out", default=str(ROOT / "docs" / "data" / "serve_load.json"))
    parser.add_argument("--plot", default=str(ROOT / "docs" / "img" / "serve_load.png"))
    args = parser.parse_args()
    if args.requests < 1 or args.max_tokens < 1 or args.rounds < 1:
        parser.error("--requests, --max-tokens and --rounds must be >= 1")

    import sage.llm.engines.transformers  # noqa: F401  (thread policy before torch)
    from sage.llm.control_plane import ControlPlaneManager
    from sage.llm.models import default_pack_name
    from sage.llm.server import ServerThread

    model = args.model or default_pack_name()
    options = {k: json.loads(v) for k, v in (a.split("=", 1) for a in args.engine_arg)}
    levels = [int(x) for x in args.levels.split(",")]
    texts = prompts(args.prompt_chars)
    cp = ControlPlaneManager("never", max_queue=max(levels) * 2, load_entry_points=False)
    deadline = time.monotonic() + args.time_limit
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    warmups: list[dict[str, Any]] = []
    try:
        for policy in POLICIES:
            print(f"loading an engine with policy {policy} ...", flush=True)
            strategy = args.strategy
            if policy == "adaptive" and args.adaptive_strategy:
                strategy = args.adaptive_strategy
            cp.start_engine(
                model,
                strategy,
                args.engine,
                engine_id=policy,
                served_model_name=policy,
                scheduling_policy=policy,
                **options,
            )
        with ServerThread(cp) as server:
            for policy in POLICIES:  # warm-up: first-call costs out of the numbers
                run_level(server.url, policy, 1, texts[:1], 8)
            if args.warmup:  # a learning policy's warm-up, run by every policy alike
                for policy in POLICIES:
                    warm = [texts[i % len(texts)] for i in range(args.warmup)]
                    row = run_level(server.url, policy, 1, warm, args.max_tokens)
                    del row["results"]
                    warmups.append(row)
                    print(
                        f"warm-up {policy:<9} {row['throughput_tokens_per_s']:7.2f} tok/s  "
                        f"spec {row['speculative_share']:.0%}",
                        flush=True,
                    )
            for level in levels:
                work = [texts[i % len(texts)] for i in range(max(args.requests, level))]
                if time.monotonic() > deadline:
                    skipped.extend({"policy": p, "concurrency": level} for p in POLICIES)
                    continue
                rounds = max(1, min(args.rounds, len(work) // level))
                cells = run_rounds(server.url, level, work, args.max_tokens, rounds)
                for policy in POLICIES:
                    row = cells[policy] | {"rounds": rounds}
                    del row["results"]
                    rows.append(row)
                    print(
                        f"c={level:<3} {policy:<9} {row['throughput_tokens_per_s']:7.2f} tok/s  "
                        f"p50 {row['latency_p50_s']:6.2f} s  p99 {row['latency_p99_s']:6.2f} s  "
                        f"spec {row['speculative_share']:.0%}",
                        flush=True,
                    )
            status = cp.status()
    finally:
        cp.shutdown()
    summary = summarize(rows)
    print_table(summary)
    result = {
        "model": model,
        "engine": args.engine,
        "strategy": args.strategy,
        "adaptive_strategy": args.adaptive_strategy or args.strategy,
        "max_tokens": args.max_tokens,
        "requests_per_cell": args.requests,
        "prompts": len(texts),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "rows": rows,
        "summary": summary,
        "skipped": skipped,
        "warmup": warmups,
        "engines": [
            {k: e[k] for k in ("engine_id", "policy", "policy_state", "strategy")}
            | {"by_strategy": e["metrics"]["by_strategy"]}
            for e in status["engines"]
        ],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    plot(rows, args.plot)
    print(f"wrote {args.out} and {args.plot}")


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per level: adaptive's throughput over the better of always and never."""
    out = []
    for level in sorted({r["concurrency"] for r in rows}):
        cell = {r["policy"]: r for r in rows if r["concurrency"] == level}
        if set(cell) != set(POLICIES):
            continue
        best = max(
            cell["always"]["throughput_tokens_per_s"], cell["never"]["throughput_tokens_per_s"]
        )
        out.append(
            {
                "concurrency": level,
                **{f"{p}_tokens_per_s": cell[p]["throughput_tokens_per_s"] for p in POLICIES},
                "adaptive_vs_best": cell["adaptive"]["throughput_tokens_per_s"] / best,
            }
        )
    return out


def print_table(summary: list[dict[str, Any]]) -> None:
    print("\n| concurrency | always tok/s | never tok/s | adaptive tok/s | adaptive / best |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for s in summary:
        rates = " | ".join(f"{s[f'{p}_tokens_per_s']:.2f}" for p in POLICIES)
        print(f"| {s['concurrency']} | {rates} | {s['adaptive_vs_best']:.2f}x |")


def plot(rows: list[dict[str, Any]], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot (pip install 'sage-llm-core[bench]')")
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for policy in POLICIES:
        mine = sorted((r for r in rows if r["policy"] == policy), key=lambda r: r["concurrency"])
        xs = [r["concurrency"] for r in mine]
        ax1.plot(xs, [r["throughput_tokens_per_s"] for r in mine], marker="o", label=policy)
        ax2.plot(xs, [r["latency_p50_s"] for r in mine], marker="o", label=f"{policy} p50")
        ax2.plot(
            xs,
            [r["latency_p99_s"] for r in mine],
            marker="x",
            linestyle="--",
            label=f"{policy} p99",
        )
    for ax, label in ((ax1, "throughput (tokens/s)"), (ax2, "latency (s)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    threading.current_thread().name = "serve-load"
    main()
