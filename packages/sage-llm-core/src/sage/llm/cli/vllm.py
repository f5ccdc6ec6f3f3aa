"""``sage-llm vllm-args``: a strategy as ``vllm serve`` flags, for users of vLLM's own server.

``sage-llm vllm-args --strategy ngram:n=5 --model Qwen/Qwen2.5-7B-Instruct`` prints::

    vllm serve Qwen/Qwen2.5-7B-Instruct --speculative-config '{"method": "ngram", ...}'

The arguments come from the same path ``VLLMService`` uses (the strategy's ``apply`` plus the
core's legacy-key migration and checks), so the server and the service run the same thing.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import click

from sage.llm._stdio import stdout_to_stderr
from sage.llm.engines.vllm.config import build_engine_args
from sage.llm.registry import get_strategy


def serve_flags(engine_args: dict[str, Any]) -> list[str]:
    """``vllm serve`` flags for engine arguments (the model itself excluded)."""
    flags: list[str] = []
    for key, value in engine_args.items():
        if key == "model" or value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else f"--no-{key.replace('_', '-')}")
        elif isinstance(value, (dict, list)):
            flags += [flag, json.dumps(value, separators=(",", ":"))]
        else:
            flags += [flag, str(value)]
    return flags


@click.command("vllm-args")
@click.option(
    "--strategy",
    "spec",
    required=True,
    help='Strategy string, e.g. "ngram:n=5,num_speculative_tokens=4".',
)
@click.option("--model", default="MODEL", show_default=True, help="Target model for the line.")
@click.option("--json", "as_json", is_flag=True, help="Print the engine arguments as JSON.")
def vllm_args(spec: str, model: str, as_json: bool) -> None:
    """Print the `vllm serve` command line (with --speculative-config) for a strategy."""
    with stdout_to_stderr() as stdout:  # only the result goes to stdout, never a plugin's print
        strategy = get_strategy(spec)
        args = build_engine_args(strategy, {"model": model})
    if as_json:
        click.echo(json.dumps(args, indent=2), file=stdout)
        return
    click.echo(shlex.join(["vllm", "serve", model, *serve_flags(args)]), file=stdout)
