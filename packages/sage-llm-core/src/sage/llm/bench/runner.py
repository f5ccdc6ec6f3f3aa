"""Run every method on every question, interleaved, and check outputs against plain greedy.

Methods run one after another on the same question (not one method over all questions), so a
slow patch on a shared machine hits every method alike. Each method is warmed up once first.
vLLM methods are the exception: vLLM fixes speculation when an engine starts, and one engine
per method at once would not fit a small machine, so each runs as a block over all questions
(started, warmed up, timed, shut down) after the interleaved methods.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from sage.llm.bench.methods import PLAIN, Method, Output, Runner
from sage.llm.bench.questions import Question

WARMUP_PROMPT = "Repeat exactly: the quick brown fox jumps over the lazy dog."


class BlockRunner(Protocol):
    """Runs one method (a vLLM engine) on a prompt; see :class:`~.methods.VLLMMethod`."""

    def run(self, prompt_ids: list[int], max_tokens: int) -> Output: ...


BlockFactory = Callable[[Method], AbstractContextManager[BlockRunner]]


@dataclass
class Record:
    """One method on one question."""

    method: str
    question_id: int | str
    category: str
    prompt_tokens: int
    num_tokens: int
    seconds: float
    matches_plain: bool
    first_mismatch: int | None
    """Index of the first generated token that differs from plain greedy (None: identical)."""
    metrics: dict[str, Any] | None
    token_ids: list[int]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def first_difference(a: Sequence[int], b: Sequence[int]) -> int | None:
    """Index where two token sequences first differ (or where the shorter ends), else None."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def run_benchmark(
    engine: Any,
    methods: Sequence[Method],
    questions: Sequence[Question],
    *,
    max_tokens: int,
    chat: bool = True,
    repeat: int = 1,
    on_record: Callable[[Record], None] | None = None,
    start_vllm: BlockFactory | None = None,
) -> list[Record]:
    """Time ``methods`` on ``questions``; ``methods[0]`` must be plain decoding (the reference).

    With ``repeat`` > 1 every question is run that many times and each method keeps its
    fastest time (the least disturbed by other work on the machine); a mismatch in any repeat
    is kept as the record. Proposers that learn across requests (a cache of earlier outputs)
    start every repeat from the state before the first, so a repeat is not answered by the
    output of the one before. Methods of kind ``vllm`` need ``start_vllm`` and run in blocks.
    """
    if not methods or methods[0].name != PLAIN:
        raise ValueError("the first method must be plain decoding: it is the reference output")
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    blocked = [m for m in methods if m.kind == "vllm"]
    interleaved = [m for m in methods if m.kind != "vllm"]
    if blocked and start_vllm is None:
        raise ValueError("vLLM methods need start_vllm (a factory of vLLM engines)")
    runner = Runner(engine)
    warm = engine.encode_prompt(WARMUP_PROMPT, chat=chat)
    for method in interleaved:
        runner.run(method, warm, min(8, max_tokens))
    records: list[Record] = []
    prompts: list[tuple[Question, list[int], list[int]]] = []
    for question in questions:
        prompt_ids = engine.encode_prompt(question.prompt, chat=chat)
        runs: dict[str, list[Output]] = {m.name: [] for m in interleaved}
        before = _snapshot(engine) if repeat > 1 else None
        for attempt in range(repeat):
            if attempt and before:  # each repeat from the state before the first
                engine.restore_proposers(before)
            for method in interleaved:
                runs[method.name].append(runner.run(method, prompt_ids, max_tokens))
        reference = runs[methods[0].name][0].token_ids
        prompts.append((question, prompt_ids, reference))
        for method in interleaved:
            _record(records, method, question, prompt_ids, reference, runs[method.name], on_record)
    for method in blocked:
        assert start_vllm is not None
        with start_vllm(method) as block:
            block.run(warm, min(8, max_tokens))
            for question, prompt_ids, reference in prompts:
                outs = [block.run(prompt_ids, max_tokens) for _ in range(repeat)]
                _record(records, method, question, prompt_ids, reference, outs, on_record)
    return records


def _snapshot(engine: Any) -> dict[Any, Any]:
    """The engine's proposers that learn across requests, copied before a question's repeats:
    without it the second run of a question would be proposed from the first run's output."""
    take = getattr(engine, "snapshot_learning_proposers", None)
    if take is None:  # an engine without proposers of its own (a test double)
        return {}
    try:
        snapshot: dict[Any, Any] = take()
    except (TypeError, copy.Error) as exc:
        raise ValueError(
            "--repeat > 1 runs each question again from the same proposer state, and a "
            f"proposer that learns across requests could not be copied ({exc}): run with "
            "--repeat 1."
        ) from exc
    return snapshot


def _record(
    records: list[Record],
    method: Method,
    question: Question,
    prompt_ids: list[int],
    reference: list[int],
    outs: list[Output],
    on_record: Callable[[Record], None] | None,
) -> None:
    diffs = [first_difference(reference, o.token_ids) for o in outs]
    bad = [i for i, d in enumerate(diffs) if d is not None]
    shown = outs[bad[0]] if bad else outs[0]
    record = Record(
        method=method.name,
        question_id=question.question_id,
        category=question.category,
        prompt_tokens=len(prompt_ids),
        num_tokens=len(shown.token_ids),
        seconds=min(o.seconds for o in outs),
        matches_plain=not bad,
        first_mismatch=diffs[bad[0]] if bad else None,
        metrics=shown.metrics,
        token_ids=shown.token_ids,
    )
    records.append(record)
    if on_record is not None:
        on_record(record)
