"""``sage-llm strategies list|show``: what is installed, what failed, what a strategy takes."""

from __future__ import annotations

import inspect
import json

import click

from sage.llm import discovery
from sage.llm._stdio import stdout_to_stderr
from sage.llm.registry import (
    STATUS_OK,
    get_strategy_class,
    list_strategies,
)


@click.group()
def strategies() -> None:
    """Inspect installed speculative-decoding strategies."""


@strategies.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def list_command(as_json: bool) -> None:
    """Every installed strategy, including those that failed to load, with the reason."""
    with stdout_to_stderr() as stdout:  # plugins print while imported; JSON stays clean
        infos = list_strategies()
    if as_json:
        click.echo(json.dumps([i.to_json() for i in infos], indent=2), file=stdout)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="sage.llm.speculative strategies")
    table.add_column("name", no_wrap=True)
    table.add_column("aliases")
    table.add_column("distribution", overflow="fold")
    table.add_column("version", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("hooks / error", overflow="fold")
    for info in infos:
        detail = ", ".join(info.hooks) if info.status == STATUS_OK else (info.error or "")
        style = "green" if info.status == STATUS_OK else "red"
        for warning in info.warnings:
            detail += f"\n[yellow]{warning}[/yellow]"
        if info.conflicts:
            detail += (
                f"\n[yellow]name also registered by {', '.join(info.conflicts)}: "
                f"select with '{info.distribution}:{info.name}'[/yellow]"
            )
        table.add_row(
            info.name,
            ", ".join(info.aliases),
            info.distribution or "?",
            info.version or "?",
            f"[{style}]{info.status}[/{style}]",
            detail,
        )
    console = Console()
    if not infos:
        installed = discovery.installed_entries()
        if installed:
            console.print(
                f"{len(installed)} strategy plugin(s) installed, but {discovery.PLUGINS_ENV}="
                f"{','.join(sorted(discovery.allowed_names() or ()))!r} allows none of them "
                f"({', '.join(sorted({e.name for e in installed}))}). Add canonical names or "
                f"distribution names to {discovery.PLUGINS_ENV}, or unset it."
            )
            return
        console.print(
            "No strategy plugins installed. Try: pip install sage-llm-strategy-ngram "
            "sage-llm-strategy-draft sage-llm-strategy-dynamic"
        )
        return
    console.print(table)


@strategies.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def show_command(name: str, as_json: bool) -> None:
    """A strategy's parameters, with types, defaults, bounds and documentation."""
    with stdout_to_stderr() as stdout:
        cls = get_strategy_class(name)
    specs = cls.parameters()
    doc = inspect.cleandoc(cls.__doc__ or "")
    if as_json:
        payload = {
            "name": cls.strategy_name(),
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "doc": doc,
            "parameters": [s.to_json() for s in specs],
        }
        click.echo(json.dumps(payload, indent=2, default=str), file=stdout)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{cls.strategy_name()}[/bold]  ({cls.__module__}.{cls.__qualname__})")
    if doc:
        console.print(doc)
    table = Table()
    for column in ("parameter", "type", "default", "range / choices", "description"):
        table.add_column(column, overflow="fold")
    for s in specs:
        bounds = []
        if s.ge is not None:
            bounds.append(f">= {s.ge:g}")
        if s.le is not None:
            bounds.append(f"<= {s.le:g}")
        if s.choices is not None:
            bounds.append(" | ".join(map(str, s.choices)))
        table.add_row(
            s.name,
            s.type_name,
            "(required)" if s.required else repr(s.default),
            ", ".join(bounds),
            s.doc,
        )
    console.print(table)
