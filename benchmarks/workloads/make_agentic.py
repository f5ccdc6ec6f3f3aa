"""Write the ``agentic`` reuse workload that ``sage-llm bench --workload agentic`` reads.

An agent's request stream repeats itself: the same instruction templates over new inputs, the
same source files edited again and again, follow-ups that quote an earlier answer, and
requests sent again unchanged (a retry, a re-plan from the same state). This script builds
such a stream, deterministically, from public text only: source files of this repository
(Apache-2.0) and the vendored Spec-Bench questions (Apache-2.0, hemingkx/Spec-Bench).

    python benchmarks/workloads/make_agentic.py   # rewrites the bundled agentic.jsonl

Each line: ``{"id", "category", "prompt"}``, plus ``"quotes": ID`` on a follow-up, whose
prompt holds ``{answer}`` where the bench puts the earlier request's answer (plain greedy
decoding's, identical for every lossless method).
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "packages/sage-llm-core/src/sage/llm/bench/data"
FILES = [  # small modules of this repository, edited again and again
    "packages/sage-llm-core/src/sage/llm/bench/questions.py",
    "packages/sage-llm-strategy-suffix/src/sage_llm_strategy_suffix/cache.py",
]
EDITS = [
    "Add a short comment above every function explaining what it returns. Reply with the "
    "whole updated file only.",
    "Rename every local variable called `path` to `file_path` (and `tokens` to `token_list`). "
    "Reply with the whole updated file only.",
]
TEMPLATE = (
    "You are a ticket router. Read the user message and reply with exactly one JSON object "
    'with the keys "category" (one of: translation, summarization, qa, math, rag, writing), '
    '"language" (the language of the message), "urgent" (true or false) and "summary" (one '
    "sentence). No other text.\n\nUser message:\n{question}"
)
FOLLOW_UPS = [
    "Here is your earlier answer:\n\n{answer}\n\nRepeat it, with every sentence on its own "
    "line and nothing else changed.",
    "Here is your earlier answer:\n\n{answer}\n\nQuote it back unchanged, then add one "
    "sentence saying which part matters most.",
]


def spec_bench(category: str, count: int) -> list[str]:
    rows = [json.loads(line) for line in (DATA / "question.jsonl").read_text().splitlines()]
    return [r["turns"][0] for r in rows if r["category"] == category][:count]


def requests() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []

    def add(category: str, prompt: str, **extra: object) -> str:
        rid = f"{category}-{sum(r['category'] == category for r in out) + 1}"
        out.append({"id": rid, "category": category, "prompt": prompt, **extra})
        return rid

    # Code edits: each file edited twice, then the first edit sent again (a retry).
    for name in FILES:
        source = (ROOT / name).read_text("utf-8")
        for edit in EDITS:
            add("code-edit", f"File `{Path(name).name}`:\n\n```python\n{source}```\n\n{edit}")
        add("code-edit", f"File `{Path(name).name}`:\n\n```python\n{source}```\n\n{EDITS[0]}")
    # One template over new inputs, two of them routed again later.
    questions = spec_bench("qa", 3) + spec_bench("translation", 2)
    for question in questions:
        add("template", TEMPLATE.format(question=question))
    for question in questions[:2]:
        add("template", TEMPLATE.format(question=question))
    # Multi-turn: a question, then a follow-up that quotes its answer (placed by the bench).
    for question, follow_up in zip(
        spec_bench("summarization", 1) + spec_bench("qa", 1), FOLLOW_UPS, strict=True
    ):
        first = add("multi-turn", question)
        add("multi-turn", follow_up, quotes=first)
    return out


def main() -> None:
    target = DATA / "agentic.jsonl"
    lines = [json.dumps(r, ensure_ascii=False) for r in requests()]
    target.write_text("\n".join(lines) + "\n", "utf-8")
    print(f"wrote {len(lines)} requests to {target}")


if __name__ == "__main__":
    main()
