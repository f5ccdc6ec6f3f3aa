"""Spec-Bench questions: load a ``question.jsonl`` file and pick prompts per category."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sage.llm.errors import SageLLMError

CATEGORIES = ("translation", "summarization", "qa", "math_reasoning", "rag", "mt_bench")
MT_BENCH = frozenset(
    {"writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"}
)
"""Spec-Bench keeps MT-bench's own eight categories; it reports them together as mt_bench."""


class QuestionsError(SageLLMError, ValueError):
    """The questions file is missing, malformed, or has nothing in the requested categories."""


@dataclass(frozen=True)
class Question:
    question_id: int | str
    category: str
    """One of :data:`CATEGORIES` (MT-bench's eight are folded into ``mt_bench``)."""
    prompt: str
    """The first turn (Spec-Bench's multi-turn questions are run on their first turn only)."""


def bundled_questions() -> Path:
    """The vendored Spec-Bench subset (see data/README.md)."""
    return Path(str(resources.files("sage.llm.bench").joinpath("data/question.jsonl")))


def load_questions(path: str | Path | None = None) -> list[Question]:
    """Read a Spec-Bench ``question.jsonl`` (one object per line with ``turns``)."""
    path = Path(path) if path is not None else bundled_questions()
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as exc:
        raise QuestionsError(f"cannot read questions file {path}: {exc}.") from exc
    out: list[Question] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            turns = obj["turns"]
            category = str(obj["category"])
            prompt = turns[0] if isinstance(turns, list) else None
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise QuestionsError(
                f"{path}:{number}: expected a JSON object with 'category' and a non-empty "
                f"'turns' list (Spec-Bench format): {exc}."
            ) from exc
        if not isinstance(prompt, str) or not prompt.strip():
            raise QuestionsError(f"{path}:{number}: the first turn must be a non-empty string.")
        category = "mt_bench" if category in MT_BENCH else category
        out.append(Question(obj.get("question_id", number), category, prompt))
    return out


def select(
    questions: list[Question], categories: tuple[str, ...] | None = None, limit: int | None = None
) -> list[Question]:
    """The first ``limit`` questions of each category, categories in the order asked."""
    present = list(dict.fromkeys(q.category for q in questions))
    wanted = list(categories) if categories else [c for c in CATEGORIES if c in present]
    wanted += [] if categories else [c for c in present if c not in CATEGORIES]
    missing = [c for c in wanted if c not in present]
    if missing:
        raise QuestionsError(
            f"no questions in categor{'y' if len(missing) == 1 else 'ies'} "
            f"{', '.join(missing)}; the file has: {', '.join(present) or 'nothing'}."
        )
    if limit is not None and limit < 1:
        raise QuestionsError(f"--limit must be >= 1, got {limit}.")
    picked: list[Question] = []
    for category in wanted:
        rows = [q for q in questions if q.category == category]
        picked += rows[:limit] if limit else rows
    return picked
