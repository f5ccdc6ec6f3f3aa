"""Spec-Bench questions: the vendored subset, other files, selection per category."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sage.llm.bench.questions import (
    CATEGORIES,
    QuestionsError,
    bundled_questions,
    load_questions,
    select,
)


def test_vendored_subset_covers_every_category_with_its_license() -> None:
    questions = load_questions()
    assert {q.category for q in questions} == set(CATEGORIES)
    assert "Apache License" in (bundled_questions().parent / "LICENSE").read_text()
    assert all(q.prompt.strip() for q in questions)


def test_select_takes_the_first_n_per_category_in_the_order_asked() -> None:
    questions = load_questions()
    picked = select(questions, ("rag", "qa"), 2)
    assert [q.category for q in picked] == ["rag", "rag", "qa", "qa"]
    assert picked[0] == next(q for q in questions if q.category == "rag")
    every = select(questions, None, 1)
    assert [q.category for q in every] == list(CATEGORIES)


def test_mt_bench_categories_are_folded(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    rows = [
        {"question_id": 1, "category": "writing", "turns": ["Write a poem.", "Again."]},
        {"question_id": 2, "category": "qa", "turns": ["Who?"]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    questions = load_questions(path)
    assert [(q.category, q.prompt) for q in questions] == [
        ("mt_bench", "Write a poem."),
        ("qa", "Who?"),
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("not json", "Spec-Bench format"),
        ('{"category": "qa"}', "Spec-Bench format"),
        ('{"category": "qa", "turns": []}', "Spec-Bench format"),
        ('{"category": "qa", "turns": [""]}', "non-empty string"),
    ],
)
def test_malformed_file_names_the_line(tmp_path: Path, line: str, expected: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"category": "qa", "turns": ["ok"]}\n' + line + "\n")
    with pytest.raises(QuestionsError) as info:
        load_questions(path)
    assert f"{path}:2" in str(info.value)
    assert expected in str(info.value)


def test_missing_file_and_missing_category_are_clear(tmp_path: Path) -> None:
    with pytest.raises(QuestionsError, match="cannot read questions file"):
        load_questions(tmp_path / "nope.jsonl")
    path = tmp_path / "q.jsonl"
    path.write_text('{"category": "qa", "turns": ["ok"]}\n')
    with pytest.raises(QuestionsError, match=r"no questions in category rag; the file has: qa"):
        select(load_questions(path), ("rag",), 1)
