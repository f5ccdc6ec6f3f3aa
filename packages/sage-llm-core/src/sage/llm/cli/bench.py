"""``sage-llm bench``: plain vs strategies vs transformers on Spec-Bench prompts, per category.

``--workload`` runs a request stream in order instead (:mod:`sage.llm.bench.workload`), so
that a strategy's cache across requests counts.

``--engine vllm`` adds vLLM to the same run: ``vllm:plain`` and ``vllm:<spec>`` rows on the same
questions and prompt token ids, with vLLM's own acceptance counters (see
:mod:`sage.llm.bench.methods`).
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from sage.llm.bench.questions import CATEGORIES
from sage.llm.cli.options import weight_layout_option
from sage.llm.known import DEFAULT_STRATEGY

if TYPE_CHECKING:
    from sage.llm.engines.transformers.layout import WeightLayout


@click.command()
@click.option("--model", "-m", default=None, help="Model pack, directory, .gguf or hub id.")
@click.option(
    "--strategy",
    "-s",
    "strategies",
    multiple=True,
    default=(DEFAULT_STRATEGY,),
    show_default=True,
    help="Strategy spec to benchmark, e.g. 'ngram:num_speculative_tokens=4'; repeatable.",
)
@click.option(
    "--questions",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Spec-Bench question.jsonl (default: the vendored subset).",
)
@click.option(
    "--category",
    "-c",
    "categories",
    multiple=True,
    type=click.Choice(CATEGORIES),
    help="Only these categories (default: every category in the file); repeatable.",
)
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Questions per category.",
)
@click.option(
    "--workload",
    "-w",
    default=None,
    help="Run a request stream in order through one engine per method instead of Spec-Bench "
    "questions, so caches across requests count: 'agentic' (bundled) or a JSON-lines file "
    "(sage.llm.bench.workload). --questions, --category, --limit and --repeat do not apply.",
)
@click.option("--max-tokens", type=click.IntRange(min=1), default=128, show_default=True)
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Run each question this many times; each method keeps its fastest time.",
)
@click.option("--no-peers", is_flag=True, help="Skip transformers' own generate baselines.")
@click.option(
    "--engine",
    "engines",
    multiple=True,
    type=click.Choice(["transformers", "vllm"]),
    default=("transformers",),
    show_default=True,
    help="Engines to benchmark; repeatable. The reference engine always runs (its plain greedy "
    "output is the reference); vllm adds vllm:plain and vllm:<strategy> rows.",
)
@click.option(
    "--no-chat", is_flag=True, help="Feed prompts raw instead of through the chat template."
)
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when present).")
@click.option(
    "--dtype",
    type=click.Choice(["auto", "float32", "bfloat16", "float16"]),
    default="auto",
    show_default=True,
    help="Weights' dtype (auto: float32 on the CPU, bfloat16/float16 on CUDA). Outside "
    "float32, differences from plain greedy are reported, not failures (docs/engine.md).",
)
@weight_layout_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench-results"),
    show_default=True,
    help="Directory for the JSON results and the PNG plot.",
)
def bench(
    model: str | None,
    strategies: tuple[str, ...],
    questions: Path | None,
    categories: tuple[str, ...],
    limit: int,
    workload: str | None,
    max_tokens: int,
    repeat: int,
    no_peers: bool,
    engines: tuple[str, ...],
    no_chat: bool,
    device: str | None,
    dtype: str,
    weight_layout: str,
    out: Path,
) -> None:
    """Benchmark plain decoding, the given strategies and transformers' peers, per category.

    Every output of ours is checked token for token against plain greedy decoding; any
    difference is reported and makes the command exit with status 1.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from sage.llm.bench.host_load import HostLoadMeter
    from sage.llm.bench.methods import dtype_name, exact_dtype, load_engine, plan
    from sage.llm.bench.questions import load_questions, select
    from sage.llm.bench.report import machine_info, plot, render_table, write_json
    from sage.llm.bench.runner import Record, run_benchmark
    from sage.llm.bench.summary import failures, summarize
    from sage.llm.bench.workload import load_workload, run_workload
    from sage.llm.models import default_pack_name, resolve_model

    console = Console(stderr=True)
    requests = load_workload(workload) if workload is not None else None
    picked = (
        [] if requests is not None else select(load_questions(questions), categories or None, limit)
    )
    count = len(requests) if requests is not None else len(picked)
    methods = plan(strategies, peers=not no_peers, engines=engines)
    model_name = model or default_pack_name()
    path = resolve_model(model_name)

    with console.status(f"loading {model_name}"):
        start = time.perf_counter()
        engine = load_engine(path, device, cast("WeightLayout", weight_layout), dtype)
        load_s = time.perf_counter() - start
    loaded_dtype = dtype_name(engine)
    exact = exact_dtype(loaded_dtype)
    console.print(
        f"{model_name} loaded in {load_s:.1f}s; {count} requests x {len(methods)} "
        f"methods: {', '.join(m.name for m in methods)}"
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    total = count * len(methods)
    # A bar where a terminal shows it; a line per finished run where the output is logged
    # (CI, `| tee`), where rich would print nothing until the table.
    bar = Progress(*columns, console=console) if console.is_terminal else None
    task = bar.add_task("warming up", total=total) if bar is not None else None
    done = 0

    def advance(record: Record) -> None:
        nonlocal done
        done += 1
        if bar is not None and task is not None:
            bar.update(task, advance=1, description=f"{record.category} {record.method}")
            return
        rate = record.num_tokens / record.seconds if record.seconds > 0 else 0.0
        console.print(
            f"[{done}/{total}] {record.category} q{record.question_id} {record.method}: "
            f"{record.num_tokens} tokens, {rate:.1f} tokens/s",
            highlight=False,
        )

    with HostLoadMeter() as meter, bar if bar is not None else contextlib.nullcontext():
        start_vllm = _vllm_starter(path, engine) if "vllm" in engines else None
        if requests is not None:
            records = run_workload(
                engine,
                methods,
                requests,
                max_tokens=max_tokens,
                chat=not no_chat,
                on_record=advance,
                start_vllm=start_vllm,
            )
        else:
            records = run_benchmark(
                engine,
                methods,
                picked,
                max_tokens=max_tokens,
                chat=not no_chat,
                repeat=repeat,
                on_record=advance,
                start_vllm=start_vllm,
            )
    host = meter.result
    rows = summarize(records, methods, exact=exact)
    what = (
        f"workload {workload}, {count} requests in order"
        if workload is not None
        else f"{count} questions (<= {limit}/category)"
    )
    title = (
        f"{model_name}, greedy, max {max_tokens} tokens, {what}, device {engine.device}, "
        f"{loaded_dtype}"
    )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    json_path = out / f"bench-{stamp}.json"
    png_path: Path | None = out / f"bench-{stamp}.png"
    png_target = out / f"bench-{stamp}.png"
    write_json(
        json_path,
        {
            "command": ["sage-llm", "bench", *sys.argv[2:]] if len(sys.argv) > 1 else None,
            "model": model_name,
            "model_path": str(path),
            "load_seconds": load_s,
            "max_tokens": max_tokens,
            "limit": limit,
            "workload": workload,
            "repeat": repeat,
            "chat": not no_chat,
            "weight_layout": weight_layout,
            "engines": ["transformers", *[e for e in engines if e != "transformers"]],
            "dtype": loaded_dtype,
            "exact": exact,
            "methods": [m.name for m in methods],
            "machine": machine_info(),
            "host_load": host.to_json() if host is not None else None,
            "summary": [r.to_json() for r in rows],
            "records": [r.to_json() for r in records],
        },
    )
    try:
        plot(rows, png_target, title)
    except ImportError:
        png_path = None
    stdout = Console()
    if not stdout.is_terminal:
        stdout = Console(width=160)
    stdout.print(render_table(rows, title))
    busy = host.note() if host is not None else None
    if busy:
        console.print(f"[yellow]note: {busy}.[/yellow]")
    console.print(f"results: {json_path}")
    console.print(
        f"plot: {png_path}" if png_path else "plot: skipped (pip install matplotlib for the PNG)"
    )
    if not exact:
        differ = [r for r in rows if r.category == "all" and r.mismatches]
        console.print(
            f"{loaded_dtype}: outputs that differ from plain greedy are reported, not failures "
            f"({', '.join(f'{r.method} {r.mismatches}/{r.questions}' for r in differ) or 'none'}"
            "; see docs/engine.md)."
        )
    bad = failures(rows)
    if bad:
        names = ", ".join(f"{r.method} ({r.mismatches} of {r.questions})" for r in bad)
        console.print(f"[red]FAILED: output differs from plain greedy decoding: {names}[/red]")
        raise SystemExit(1)


def _vllm_starter(path: Path, engine: Any) -> Any:
    """Starts one vLLM engine per vLLM method, in the reference engine's dtype.

    ``max_model_len`` is bounded so that the CPU default KV cache holds a full sequence of any
    bench question; everything else is the service's defaults (on the CPU:
    :func:`sage.llm.engines.vllm.cpu.cpu_defaults`).
    """
    from sage.llm.bench.methods import Method, VLLMMethod

    dtype = str(engine.model.dtype).removeprefix("torch.")

    def start(method: Method) -> VLLMMethod:
        return VLLMMethod(method, str(path), dtype=dtype, engine_args={"max_model_len": 4096})

    return start
