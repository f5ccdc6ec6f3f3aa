"""``sage-llm generate``: speculative generation with a chosen strategy, and what it gained.

The text streams as it is produced; then the run's numbers follow on stderr: tokens/s,
acceptance, mean accepted length, and a speedup measured against plain decoding of the same
prompt on the same model (a short plain run by default, so the estimate costs little;
``--baseline-tokens`` sets its length, 0 turns it off). ``--json`` prints one object instead.

``--engine vllm`` takes the same options: the prompt is prepared the same way (chat template by
default), ``--stop`` and ``--chat`` are honoured, ``--device`` must name the device the installed
vLLM runs on, ``--weight-layout`` other than ``auto`` is refused (vLLM lays out its own weights),
and ``--baseline-tokens`` runs only when given, because plain decoding on vLLM is a second
engine start. The strategy string is resolved once, here, and both engines get the object.
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import click

from sage.llm._stdio import stdout_fd_to_stderr
from sage.llm.cli.options import weight_layout_option
from sage.llm.known import DEFAULT_STRATEGY
from sage.llm.registry import means_no_strategy, resolve_optional_strategy

if TYPE_CHECKING:
    from sage.llm.bench.host_load import HostLoad
    from sage.llm.engines.transformers.layout import WeightLayout
    from sage.llm.results import GenerationResult
    from sage.llm.strategy import SpeculativeStrategy

ENGINES = ("transformers", "vllm")


@click.command()
@click.argument("prompt")
@click.option(
    "--strategy",
    "-s",
    default=DEFAULT_STRATEGY,
    show_default=True,
    help="Strategy string (name[:k=v,...], e.g. 'ngram:n=3,num_speculative_tokens=5') or "
    "'none' for plain decoding.",
)
@click.option(
    "--model",
    "-m",
    default=None,
    help="Model pack name, local model directory, .gguf file or hub id (default: the "
    "default model pack).",
)
@click.option(
    "--draft-model",
    default=None,
    help="Draft model for a strategy that proposes with one (it declares a draft-model "
    "parameter); without --strategy, the one installed strategy that needs a draft model.",
)
@click.option("--engine", type=click.Choice(ENGINES), default="transformers", show_default=True)
@click.option("--max-tokens", type=click.IntRange(min=1), default=128, show_default=True)
@click.option(
    "--temperature",
    type=click.FloatRange(min=0.0),
    default=0.0,
    show_default=True,
    help="0 is greedy decoding.",
)
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="Sample from the k best.")
@click.option("--top-p", type=click.FloatRange(min=0.0, max=1.0, min_open=True), default=None)
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed for sampling.")
@click.option("--stop", multiple=True, help="Stop when this text appears (repeatable).")
@click.option(
    "--chat/--no-chat",
    default=None,
    help="Wrap the prompt in the model's chat template (default: when it has one).",
)
@click.option("--device", default=None, help="cpu, cuda, cuda:1... (default: cuda if present).")
@click.option(
    "--dtype",
    type=click.Choice(["float32", "bfloat16", "float16"]),
    default=None,
    help="Weights' dtype (default: the engine's: float32 on the CPU for transformers, the "
    "model's own or bfloat16 for vLLM).",
)
@weight_layout_option
@click.option(
    "--baseline-tokens",
    type=click.IntRange(min=0),
    default=32,
    show_default=True,
    help="Plain-decoding tokens generated to measure the speedup (0: no baseline). With "
    "--engine vllm only when given: it starts a second, plain engine.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
def generate(
    prompt: str,
    strategy: str,
    model: str | None,
    draft_model: str | None,
    engine: str,
    max_tokens: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    seed: int | None,
    stop: tuple[str, ...],
    chat: bool | None,
    device: str | None,
    dtype: str | None,
    weight_layout: str,
    baseline_tokens: int,
    as_json: bool,
) -> None:
    """Generate a completion of PROMPT with speculative decoding and report the speedup."""
    from sage.llm.bench.host_load import HostLoadMeter

    meter = HostLoadMeter().start()  # other processes' share of the CPU, for the speedup's note
    spec = _strategy_spec(strategy, draft_model, explicit=_given("strategy"))
    resolved = _resolve(spec)
    if engine == "transformers" and resolved is not None:
        from sage.llm.engines.transformers.engine import require_proposer

        try:  # before the model is loaded: a vLLM-only strategy fails in a second, not minutes
            require_proposer(resolved)
        except NotImplementedError as exc:
            raise click.UsageError(str(exc)) from exc
    if engine == "vllm":
        if weight_layout != "auto":
            raise click.UsageError(
                "--weight-layout applies to the transformers engine only: vLLM lays out its "
                "own weights. Drop it, or use --engine transformers."
            )
        vllm_options = VLLMOptions(
            max_tokens=max_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
            stop=stop,
            chat=chat,
            device=device,
            dtype=dtype,
            baseline_tokens=baseline_tokens if _given("baseline_tokens") else 0,
        )
        result, baseline = _generate_vllm(prompt, resolved, model, vllm_options, as_json)
        _report_run(result, baseline, spec, engine, temperature, as_json, meter.stop())
        return
    from sage.llm.engines.transformers import TransformersEngine

    target = _model_name(model)
    if not as_json:
        click.echo(f"Loading {target} ...", err=True)
    _quiet_transformers()
    # The text streams to stdout without --json; with it, stdout holds the JSON only.
    with stdout_fd_to_stderr() if as_json else contextlib.nullcontext():
        try:
            runner = TransformersEngine.from_pretrained(
                target,
                device=device,
                dtype=dtype,
                weight_layout=cast("WeightLayout", weight_layout),
            )
            options: dict[str, Any] = dict(
                max_tokens=max_tokens,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                seed=seed,
                stop=list(stop),
                chat=chat,
            )
            stream = None if as_json else _stream
            result = runner.generate(prompt, strategy=resolved, on_text=stream, **options)
            baseline = None
            if spec is not None and baseline_tokens > 0:
                count = min(baseline_tokens, max(1, len(result.token_ids)))
                baseline = runner.generate(prompt, **{**options, "max_tokens": count, "stop": []})
        except (ValueError, NotImplementedError, ImportError) as exc:
            raise click.ClickException(str(exc)) from exc
    _report_run(result, baseline, spec, engine, temperature, as_json, meter.stop())


def _quiet_transformers() -> None:
    """No weight-loading progress bars between the command and its output."""
    from transformers.utils import logging as hf_logging

    disable: Any = hf_logging.disable_progress_bar  # untyped
    disable()


def _given(name: str) -> bool:
    ctx = click.get_current_context()
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


def _strategy_spec(strategy: str, draft_model: str | None, *, explicit: bool) -> str | None:
    """The strategy string to resolve, with ``--draft-model`` folded in."""
    text = strategy.strip()
    if means_no_strategy(text):
        if draft_model:
            raise click.UsageError("--draft-model needs a draft strategy, not --strategy none.")
        return None
    if draft_model is None:
        return text
    from sage.llm.params import draft_model_param, parse_spec
    from sage.llm.registry import get_strategy_class

    takers = _draft_model_strategies()
    if not explicit:
        needing = [name for name, required in takers.items() if required]
        if len(needing) != 1:
            raise click.UsageError(
                "--draft-model: pass --strategy to say which strategy proposes with it "
                f"(strategies that take a draft model: {', '.join(takers) or 'none installed'})."
            )
        text = needing[0]
    parsed = parse_spec(text)
    param = draft_model_param(get_strategy_class(parsed.name, distribution=parsed.distribution))
    if param is None:
        raise click.UsageError(
            f"--draft-model applies to strategies that propose with a draft model "
            f"({', '.join(takers) or 'none installed'}), not {parsed.name!r}."
        )
    separator = "," if parsed.params else ":"
    return f"{text}{separator}{param.name}={draft_model}"


def _draft_model_strategies() -> dict[str, bool]:
    """Installed strategies that declare a draft-model parameter (``param(...,
    draft_model=True)``), each with whether it needs one (the parameter is required)."""
    from sage.llm.params import draft_model_param
    from sage.llm.registry import STATUS_OK, get_strategy_class, list_strategies

    takers: dict[str, bool] = {}
    for info in list_strategies():
        if info.status == STATUS_OK:
            param = draft_model_param(get_strategy_class(info.name))
            if param is not None:
                takers[info.name] = param.required
    return takers


def _model_name(model: str | None) -> str:
    if model is not None:
        return model
    from sage.llm.models import resolve_model

    return str(resolve_model(None))


def _stream(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _decode_rate(metrics: Any) -> float:
    """Tokens per second after the first token (prefill excluded): what speculation changes."""
    seconds = metrics.wall_time_s - metrics.prefill_time_s
    tokens = metrics.num_generated_tokens - 1
    return tokens / seconds if tokens > 0 and seconds > 0 else 0.0


def _whole_call(engine: str) -> bool:
    """vLLM reports no prefill time: its rates are of whole calls, prefill included."""
    return engine == "vllm"


def _report_run(
    result: GenerationResult,
    baseline: GenerationResult | None,
    spec: str | None,
    engine: str,
    temperature: float,
    as_json: bool,
    host: HostLoad | None = None,
) -> None:
    """The one report of a run, for either engine: one JSON object, or the text (when it was
    not streamed) and the numbers on stderr. ``host`` says how busy the machine was: a speedup
    is two timings one after the other, and other work on the host moves it."""
    report = _report(result, baseline, engine, temperature)
    report["host_load"] = host.to_json() if host is not None else None
    note = host.note() if host is not None and report["speedup"] is not None else None
    if as_json:
        payload = {**result.to_json(), "strategy": spec or "none", "engine": engine, **report}
        click.echo(json.dumps(payload))
        return
    # the reference engine streamed the text as it came; vLLM returns it at the end
    click.echo(result.text if _whole_call(engine) else "")
    _print_summary(result, report, engine)
    if note:
        click.echo(f"note: {note}.", err=True)


def _report(
    result: GenerationResult, baseline: GenerationResult | None, engine: str, temperature: float
) -> dict[str, Any]:
    """The speedup over plain decoding of the same prompt on the same engine.

    On the reference engine the rates exclude prefill; vLLM reports no prefill time, so there
    they are whole-call rates, and a baseline much shorter than the output flatters the speedup
    (give --baseline-tokens the --max-tokens value for a like-for-like figure)."""
    report: dict[str, Any] = {"speedup": None, "baseline": None}
    if baseline is None:
        return report
    whole_call = _whole_call(engine)
    rate = (lambda m: m.tokens_per_second) if whole_call else _decode_rate
    plain_rate = rate(baseline.metrics)
    spec_rate = rate(result.metrics)
    n = len(baseline.token_ids)
    agrees = result.token_ids[:n] == baseline.token_ids if temperature == 0 else None
    report["speedup"] = spec_rate / plain_rate if plain_rate > 0 and spec_rate > 0 else None
    report["baseline"] = {
        "tokens": n,
        ("tokens_per_second" if whole_call else "decode_tokens_per_second"): plain_rate,
        "matches_plain_greedy": agrees,
    }
    return report


def _acceptance_line(m: Any) -> str:
    """One line of speculative counters, the same for both engines."""
    per_position = ", ".join(f"{a:.2f}" for a in m.per_position_acceptance)
    return (
        f"acceptance {m.acceptance_rate:.1%} ({m.num_accepted_tokens}/{m.num_draft_tokens} "
        f"draft tokens in {m.num_drafts} drafts), mean accepted length "
        f"{m.mean_accepted_length:.2f}, per position [{per_position}]"
    )


def _print_summary(result: GenerationResult, report: dict[str, Any], engine: str) -> None:
    m = result.metrics
    whole_call = _whole_call(engine)
    prefill = "prefill included" if whole_call else f"prefill {m.prefill_time_s:.2f} s"
    lines = [
        f"{m.num_generated_tokens} tokens in {m.wall_time_s:.2f} s: "
        f"{m.tokens_per_second:.1f} tokens/s ({prefill}), "
        f"finished by {result.finish_reason}" + (" (vLLM)" if whole_call else "")
    ]
    if m.num_drafts:
        lines.append(_acceptance_line(m))
        if m.draft_time_s or m.verify_time_s:  # vLLM reports neither
            lines.append(f"time in draft {m.draft_time_s:.2f} s, in verify {m.verify_time_s:.2f} s")
    elif m.num_steps:
        lines.append("no draft was proposed: every step was plain decoding")
    baseline = report.get("baseline")
    if report.get("speedup") is not None and baseline:
        check = {True: ", same tokens", False: ", TOKENS DIFFER", None: ""}[
            baseline["matches_plain_greedy"]
        ]
        if whole_call:
            where, rate, extra = " on vLLM", baseline["tokens_per_second"], ", prefill included"
        else:
            where, rate, extra = "", baseline["decode_tokens_per_second"], ""
        lines.append(
            f"speedup ~{report['speedup']:.2f}x vs plain decoding{where} "
            f"({rate:.1f} tokens/s over its first {baseline['tokens']} tokens{extra}{check})"
        )
    for line in lines:
        click.echo(line, err=True)


def _resolve(spec: str | None) -> SpeculativeStrategy | None:
    """The strategy object for ``spec``: resolved (and checked) once, for either engine."""
    return resolve_optional_strategy(spec)


@dataclass(frozen=True)
class VLLMOptions:
    """The ``generate`` options the vLLM path honours."""

    max_tokens: int
    temperature: float
    top_k: int | None
    top_p: float | None
    seed: int | None
    stop: tuple[str, ...]
    chat: bool | None
    device: str | None
    dtype: str | None
    baseline_tokens: int


def _generate_vllm(
    prompt: str,
    strategy: SpeculativeStrategy | None,
    model: str | None,
    options: VLLMOptions,
    as_json: bool,
) -> tuple[GenerationResult, GenerationResult | None]:
    """The run on vLLM, and the plain baseline run when one was asked for."""
    # Ships in this wheel and imports no vLLM: a missing vLLM is reported where it is used.
    from sage.llm.engines.vllm.generate import check_device, generate_cli

    target = _model_name(model)
    if not as_json:
        click.echo(f"Starting vLLM on {target} ...", err=True)
    common: dict[str, Any] = dict(
        model=target,
        prompts=[prompt],
        temperature=options.temperature,
        top_p=options.top_p if options.top_p is not None else 1.0,
        top_k=options.top_k,
        seed=options.seed if options.seed is not None else 0,
        chat=options.chat,
        dtype=options.dtype or "auto",
    )
    # vLLM logs to stdout, and so do its C++ code and engine-core process: all of it goes to
    # stderr, so that stdout holds the text (or the JSON) alone.
    with stdout_fd_to_stderr():
        if options.device is not None:
            check_device(options.device)
        result = generate_cli(
            **common, strategy=strategy, max_tokens=options.max_tokens, stop=options.stop
        )
        baseline = None
        if strategy is not None and options.baseline_tokens > 0:
            count = min(options.baseline_tokens, max(1, len(result.token_ids)))
            baseline = generate_cli(**common, strategy=None, max_tokens=count)
    return result, baseline
