"""Check every relative markdown link and image in docs/ and README.md: the file exists and,
where the link names an anchor in a markdown file, a heading there makes that anchor
(GitHub's rule: lower case, punctuation dropped, spaces to hyphens, -1, -2 for repeats)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(`{3,}|~{3,}).*?^\1\s*$", re.M | re.S)


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", path.read_text()).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", m.group(1))
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def broken(root: Path = ROOT) -> list[str]:
    """``page: target (why)`` for every relative link that does not resolve."""
    bad = []
    pages = [*sorted((root / "docs").rglob("*.md")), root / "README.md"]
    for page in pages:
        text = FENCE.sub("", page.read_text())
        text = re.sub(r"`[^`\n]*`", "", text)
        for target in LINK.findall(text):
            if re.match(r"^[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            if not dest.exists():
                bad.append(f"{page.relative_to(root)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                bad.append(f"{page.relative_to(root)}: {target} (no such heading)")
    return bad


def main() -> int:
    bad = broken()
    print("\n".join(bad) or "all links resolve")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
