"""The ``sage-llm`` entry point: a click group that the command modules attach to."""

from __future__ import annotations

import click

from sage.llm._version import __version__
from sage.llm.errors import SageLLMError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sage-llm")
def cli() -> None:
    """sage-llm: pick, run and measure speculative-decoding strategies."""


def _register() -> None:
    from sage.llm.cli.bench import bench
    from sage.llm.cli.generate import generate
    from sage.llm.cli.models import models
    from sage.llm.cli.replay import replay
    from sage.llm.cli.serve import serve
    from sage.llm.cli.strategies import strategies
    from sage.llm.cli.vllm import vllm_args

    cli.add_command(strategies)
    cli.add_command(vllm_args)
    cli.add_command(models)
    cli.add_command(bench)
    cli.add_command(generate)
    cli.add_command(replay)
    cli.add_command(serve)


_register()


def main() -> None:
    """Run the CLI; library errors become one clear line and exit status 2, not a traceback."""
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        raise SystemExit(1) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except SageLLMError as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(2) from None
