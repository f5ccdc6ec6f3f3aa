"""``sage-llm replay``: record traces, replay policies on them, check the replay, plot it.

The subcommands and what they write are in docs/benchmarks.md; the replay itself is
:mod:`sage.llm.bench.replay`. ``python -m sage.llm.bench.replay`` runs this same group
(:func:`run_as_script`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from sage.llm.known import DEFAULT_STRATEGY

_TRACES = click.Path(exists=True, dir_okay=False, path_type=Path)
_OUT = click.Path(dir_okay=False, path_type=Path)


@click.group()
def replay() -> None:
    """Replay speculation policies exactly on recorded traces (tokens exact, time modelled)."""


@replay.command()
@click.option("--model", default="qwen2.5-coder-0.5b-instruct", show_default=True)
@click.option("--questions", default=None, help="Spec-Bench question.jsonl (default: vendored).")
@click.option("--limit", type=int, default=4, show_default=True, help="questions per category")
@click.option(
    "--skip", type=int, default=0, show_default=True, help="skip the first N per category"
)
@click.option("--max-tokens", type=int, default=128, show_default=True)
@click.option("--max-pass", type=int, default=17, show_default=True, help="largest pass measured")
@click.option("--out", type=_OUT, required=True)
def record(
    model: str,
    questions: str | None,
    limit: int,
    skip: int,
    max_tokens: int,
    max_pass: int,
    out: Path,
) -> None:
    """Plain greedy runs + measured pass costs -> traces JSON."""
    from sage.llm.bench.methods import load_engine
    from sage.llm.bench.questions import load_questions
    from sage.llm.bench.replay.loading import pick_questions
    from sage.llm.bench.traces import record as record_traces
    from sage.llm.engines.transformers.loading import set_cpu_environment
    from sage.llm.models import resolve_model

    set_cpu_environment()
    picked = pick_questions(load_questions(questions), skip, limit)
    engine = load_engine(resolve_model(model))
    traceset = record_traces(
        engine,
        picked,
        max_tokens=max_tokens,
        max_pass=max_pass,
        on_trace=lambda t: click.echo(
            f"{t.category} {t.question_id}: {len(t.output_ids)} tokens, {t.plain_seconds:.1f}s"
        ),
    )
    traceset.save(out)
    click.echo(f"pass costs (s): {[round(c, 4) for c in traceset.costs.pass_seconds]}")


@replay.command()
@click.argument("traces", type=_TRACES, nargs=-1, required=True)
@click.option(
    "--inner",
    default=DEFAULT_STRATEGY,
    show_default=True,
    help="Strategy whose proposer the baselines run over; one that proposes with a draft model "
    "(a draft-model parameter, required or given) runs over the traces' recorded draft.",
)
@click.option("--max-k", type=int, default=10, show_default=True)
@click.option(
    "-s", "--strategy", "strategies", multiple=True, help="Strategy to replay; repeatable."
)
@click.option(
    "--pass-costs",
    default=None,
    help="comma-separated seconds of a pass of 1, 2, ... tokens, instead of the traces' "
    "measured table (the last value carries on to larger passes)",
)
@click.option("--json", "json_path", type=_OUT, default=None, help="Write the summary here.")
@click.option("--plot", "plot_path", type=_OUT, default=None, help="Draw it here (PNG).")
@click.option(
    "--orders",
    type=int,
    default=1,
    show_default=True,
    help="also replay each -s strategy in this many orders of the traces (the given one, "
    "then seeded shuffles) and print each category's mean and range",
)
def run(
    traces: tuple[Path, ...],
    inner: str,
    max_k: int,
    strategies: tuple[str, ...],
    pass_costs: str | None,
    json_path: Path | None,
    plot_path: Path | None,
    orders: int,
) -> None:
    """Replay the baselines and the given strategies on traces."""
    from sage.llm.bench.replay import (
        format_table,
        inner_proposer,
        over_orders,
        plot,
        plot_columns,
        run_policies,
        standard_policies,
        strategy_policy,
        summarize,
        with_order_means,
    )

    with _clear_errors():
        traceset = _load(traces, pass_costs, max_k)
        make_inner, draft = inner_proposer(inner, traceset)
        policies = standard_policies(traceset, make_inner, max_k, strategies, draft=draft)
        results = run_policies(traceset, policies)
    summary = summarize(traceset, results)
    columns = [
        *[f"fixed-{k}" for k in range(1, max_k + 1)],
        "best-fixed (category)",
        "best-fixed k",
        "best-fixed (request)",
        "hf-heuristic",
        "ema-tiers",
        "ucb",
        *(["hf-assisted:default"] if draft else []),
        *strategies,
        "oracle",
    ]
    click.echo(format_table(summary, columns))
    if orders > 1:
        summary["orders"] = {"count": orders}
        cats = summary["categories"]
        click.echo(f"\nover {orders} orders of the traces: mean speedup (lowest-highest)")
        click.echo("| strategy | " + " | ".join(cats) + " |")
        click.echo("| --- |" + " ---: |" * len(cats))
        for spec in strategies:
            with _clear_errors():
                make = strategy_policy(spec, make_inner if draft else None)
                spread = over_orders(traceset, make, results["plain"], orders)
            summary["orders"][spec] = spread
            cells = [
                f"{spread[c]['mean']:.2f}x ({spread[c]['min']:.2f}-{spread[c]['max']:.2f})"
                for c in cats
            ]
            click.echo(f"| {spec} | " + " | ".join(cells) + " |")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(summary, indent=1))
    if plot_path is not None:
        plot(with_order_means(summary), plot_columns(summary, strategies), plot_path)


@replay.command("record-draft")
@click.argument("traces", type=_TRACES)
@click.option("--draft", required=True, help="draft model: pack name or directory")
@click.option("--out", type=_OUT, required=True)
def record_draft(traces: Path, draft: str, out: Path) -> None:
    """Add a draft model's predictions and measured costs to traces."""
    from sage.llm.bench.draft_traces import record_draft as record
    from sage.llm.bench.replay.loading import load_model_for_traces
    from sage.llm.bench.traces import TraceSet

    traceset = TraceSet.load(traces)
    model = load_model_for_traces(draft, traceset)
    record(
        traceset,
        model,
        draft,
        on_trace=lambda t: click.echo(
            f"{t.category} {t.question_id}: draft agrees on "
            f"{sum(d == o for d, o in zip(t.draft_tokens, t.output_ids, strict=True))}"
            f"/{len(t.output_ids)} positions"
        ),
    )
    traceset.save(out)
    costs = traceset.costs
    feed = [round(c, 4) for c in costs.draft_feed_seconds]
    click.echo(f"draft feed costs (s): {dict(zip(costs.draft_feed_tokens, feed, strict=True))}")


@replay.command("record-confidence")
@click.argument("traces", type=_TRACES)
@click.option("--target", default=None, help="default: the traces' own model")
@click.option("--out", type=_OUT, required=True)
def record_confidence(traces: Path, target: str | None, out: Path) -> None:
    """Add the target's probability of each output token to traces (teacher-forced)."""
    from sage.llm.bench.draft_traces import record_target_confidence
    from sage.llm.bench.replay.loading import load_model_for_traces
    from sage.llm.bench.traces import TraceSet

    traceset = TraceSet.load(traces)
    model = load_model_for_traces(target or traceset.model, traceset)
    with _clear_errors():
        record_target_confidence(
            traceset,
            model,
            on_trace=lambda t: click.echo(
                f"{t.category} {t.question_id}: mean target probability "
                f"{sum(t.target_confidence) / len(t.target_confidence):.3f}"
            ),
        )
    traceset.save(out)


@replay.command()
@click.argument("bench", type=_TRACES)
@click.argument("traces", type=_TRACES, nargs=-1, required=True)
@click.option("--pass-costs", default=None, help="as for run")
def check(bench: Path, traces: tuple[Path, ...], pass_costs: str | None) -> None:
    """Simulated vs measured speedup for the methods of a sage-llm bench JSON (BENCH), on
    traces of its questions."""
    from sage.llm.bench.replay import check as check_bench

    with _clear_errors():  # traces of another model, or without the draft's predictions
        rows = check_bench(_load(traces, pass_costs, 64), json.loads(bench.read_text()))
    click.echo("| method | category | simulated | measured | error |")
    click.echo("| --- | --- | ---: | ---: | ---: |")
    for row in rows:
        click.echo(
            f"| {row['method']} | {row['category']} | {row['simulated']:.2f}x | "
            f"{row['measured']:.2f}x | {row['error']:+.0%} |"
        )
    cells = [abs(r["error"]) for r in rows if r["category"] != "all"]
    if cells:
        click.echo(
            f"mean absolute error over {len(cells)} (method, category) cells: "
            f"{sum(cells) / len(cells):.1%} (largest {max(cells):.0%})"
        )


@replay.command("plot")
@click.argument("summary", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=_OUT, required=True, help="PNG to write")
@click.option(
    "-s",
    "--strategy",
    "strategies",
    multiple=True,
    help="strategies to show (default: every one the summary replayed over orders)",
)
def plot_command(summary: Path, out: Path, strategies: tuple[str, ...]) -> None:
    """Draw a saved `run --json` summary (strategies at their mean over --orders)."""
    from sage.llm.bench.replay import plot, plot_columns, with_order_means

    try:
        data = json.loads(summary.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read {summary} as JSON: {exc}") from None
    if not isinstance(data, dict) or "speedup" not in data or "categories" not in data:
        raise click.ClickException(f"{summary} is not a summary written by `replay run --json`")
    held = data["speedup"][data["categories"][0]]
    shown = list(strategies) or [k for k in data.get("orders", {}) if k != "count"]
    unknown = [s for s in shown if s not in held]
    if unknown:
        raise click.ClickException(
            f"{summary} holds no results for {', '.join(map(repr, unknown))}; "
            f"it has: {', '.join(held)}"
        )
    plot(with_order_means(data), plot_columns(data, shown), out)
    click.echo(f"wrote {out}")


def _load(paths: Sequence[Path], pass_costs: str | None, max_k: int) -> Any:
    from sage.llm.bench.replay import load_traces

    return load_traces(paths, pass_costs, max_k)


@contextmanager
def _clear_errors() -> Iterator[None]:
    """A ``ValueError`` from the replay (bad ``--pass-costs``, traces of another model or
    without the draft's predictions, a strategy that cannot be replayed) becomes one line."""
    try:
        yield
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def run_as_script(argv: Sequence[str] | None = None) -> int:
    """``python -m sage.llm.bench.replay ARGS``: this group under its older name. An error
    ends the process with its message (``SystemExit``), as before the command moved."""
    from sage.llm.errors import SageLLMError

    try:
        code = replay.main(
            args=list(argv) if argv is not None else None,
            prog_name="python -m sage.llm.bench.replay",
            standalone_mode=False,
        )
    except click.ClickException as exc:
        raise SystemExit(f"Error: {exc.format_message()}") from None
    except SageLLMError as exc:
        raise SystemExit(f"Error: {exc}") from None
    return code if isinstance(code, int) else 0
