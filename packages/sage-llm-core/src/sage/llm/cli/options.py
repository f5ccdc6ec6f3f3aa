"""Options that more than one command takes, declared once so they read and behave the same."""

from __future__ import annotations

import click

# The names of sage.llm.engines.transformers.layout.LAYOUTS, spelled out: importing that package
# here would set torch's thread environment whenever any command is imported.
weight_layout_option = click.option(
    "--weight-layout",
    type=click.Choice(["auto", "column", "row"]),
    default="auto",
    show_default=True,
    help="Target weights in memory (transformers engine): auto = column-major for fp32 on the "
    "CPU, which makes verify passes cheaper; row = PyTorch's default layout.",
)
