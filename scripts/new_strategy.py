"""Create a new strategy distribution from templates/sage-llm-strategy-template.

    python scripts/new_strategy.py medusa-lite   # -> packages/sage-llm-strategy-medusa-lite
    python scripts/new_strategy.py my-thing --dest /tmp   # anywhere, e.g. a third-party repo

The template is an ordinary, buildable project with three placeholders: __NAME__ (the strategy
name), __MODULE__ (the import package) and __CLASS__ (the class).
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "sage-llm-strategy-template"


def render(name: str, dest_root: Path) -> Path:
    if not re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]", name):
        raise SystemExit(f"strategy name {name!r}: use lowercase letters, digits and '-'")
    module = "sage_llm_strategy_" + name.replace("-", "_")
    cls = "".join(part.capitalize() for part in name.split("-")) + "Strategy"
    dest = dest_root / f"sage-llm-strategy-{name}"
    if dest.exists():
        raise SystemExit(f"{dest} already exists")
    shutil.copytree(TEMPLATE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    for path in sorted(dest.rglob("*"), key=lambda p: -len(p.parts)):
        if path.is_file():
            text = path.read_text()
            text = text.replace("__MODULE__", module).replace("__CLASS__", cls)
            path.write_text(text.replace("__NAME__", name))
        if "__MODULE__" in path.name:
            path.rename(path.with_name(path.name.replace("__MODULE__", module)))
    return dest


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name")
    parser.add_argument(
        "--dest", type=Path, default=Path(__file__).resolve().parents[1] / "packages"
    )
    args = parser.parse_args()
    print(render(args.name, args.dest))
