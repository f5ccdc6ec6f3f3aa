"""Keep the code blocks of docs/*.md identical to the files they show.

A block is marked by the comment line above it::

    <!-- snippet: examples/sage-llm-strategy-lookahead-example/pyproject.toml -->
    ```toml
    ...the whole file...
    ```

``python scripts/doc_snippets.py`` rewrites every marked block from its file;
``--check`` only reports blocks that differ (CI runs the check through tests/test_docs.py), so
a page never shows code that the example project, which CI builds and tests, does not contain.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(
    r"^<!-- snippet: (?P<path>\S+) -->\n(?P<fence>`{3,})(?P<lang>\w*)\n(?P<body>.*?)^(?P=fence)\n",
    re.M | re.S,
)
"""A marked block; its fence is longer than any run of backticks in the file (a README's own
code blocks stay inside it)."""
LANGUAGES = {".py": "python", ".toml": "toml", ".md": "markdown", ".sh": "bash"}


def render(text: str) -> str:
    """``text`` with every marked block replaced by the current content of its file."""

    def block(match: re.Match[str]) -> str:
        path = match.group("path")
        source = (ROOT / path).read_text()
        lang = LANGUAGES.get(Path(path).suffix, match.group("lang"))
        fence = "`" * max(3, 1 + max((len(run) for run in re.findall("`+", source)), default=0))
        return f"<!-- snippet: {path} -->\n{fence}{lang}\n{source.rstrip()}\n{fence}\n"

    return MARKER.sub(block, text)


def snippets(text: str) -> list[str]:
    return [m.group("path") for m in MARKER.finditer(text)]


def snippet_bodies(text: str) -> dict[str, str]:
    """Each marked block's path and the text the page prints for it (as a file: one newline at
    the end)."""
    return {m.group("path"): m.group("body").rstrip() + "\n" for m in MARKER.finditer(text)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="report stale blocks, change nothing")
    args = parser.parse_args()
    stale = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text()
        new = render(text)
        if new != text:
            stale.append(page.relative_to(ROOT))
            if not args.check:
                page.write_text(new)
    for page in stale:
        print(f"{page}: {'stale snippets' if args.check else 'updated'}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
