"""Runner and summary: interleaved runs, equality with plain greedy, per-category numbers."""

from __future__ import annotations

from typing import Any

import pytest

from sage.llm.bench.methods import HF_PLAIN, PLAIN, VLLM_PLAIN, Method, peer_of
from sage.llm.bench.questions import Question
from sage.llm.bench.runner import Record, first_difference, run_benchmark
from sage.llm.bench.summary import ALL, failures, summarize

QUESTIONS = [
    Question(1, "qa", "who wrote it"),
    Question(2, "qa", "when was it"),
    Question(3, "rag", "context: a b c. question: b?"),
]
METHODS = [
    Method(PLAIN, "engine", PLAIN),
    Method("good", "engine", "ngram", strategy="good:k=4"),
    Method("buggy", "engine", "ngram", strategy="buggy:k=7"),
]


def test_first_difference() -> None:
    assert first_difference([1, 2, 3], [1, 2, 3]) is None
    assert first_difference([1, 2, 3], [1, 5, 3]) == 1
    assert first_difference([1, 2], [1, 2, 3]) == 2


def test_runs_interleaved_and_flags_mismatches(engine: Any) -> None:
    seen: list[str] = []
    records = run_benchmark(
        engine, METHODS, QUESTIONS, max_tokens=6, on_record=lambda r: seen.append(r.method)
    )
    assert len(records) == len(QUESTIONS) * len(METHODS)
    # warm-up once per method, then every method on question 1 before question 2
    assert engine.calls[:3] == [None, "good:k=4", "buggy:k=7"]
    assert engine.calls[3:6] == [None, "good:k=4", "buggy:k=7"]
    assert seen[:3] == [PLAIN, "good", "buggy"]
    by_method = {m.name: [r for r in records if r.method == m.name] for m in METHODS}
    assert all(r.matches_plain for r in by_method["good"])
    assert all(not r.matches_plain and r.first_mismatch == 5 for r in by_method["buggy"])
    rows = summarize(records, METHODS)
    assert [r.method for r in failures(rows)] == ["buggy"]
    overall = {r.method: r for r in rows if r.category == ALL}
    assert overall["buggy"].first_mismatch == 5
    assert overall["good"].first_mismatch is None
    # Outside float32 a difference is measured and reported, not a failure.
    low_precision = summarize(records, METHODS, exact=False)
    assert failures(low_precision) == []
    assert {r.method: r.mismatches for r in low_precision if r.category == ALL}["buggy"] == 3


def test_only_float32_is_held_to_token_identity() -> None:
    from sage.llm.bench.methods import exact_dtype

    assert exact_dtype("float32")
    assert not exact_dtype("bfloat16")
    assert not exact_dtype("float16")


def test_repeat_keeps_the_fastest_time(engine: Any) -> None:
    records = run_benchmark(engine, METHODS[:2], QUESTIONS[:1], max_tokens=4, repeat=3)
    assert len(records) == 2
    with pytest.raises(ValueError, match="repeat"):
        run_benchmark(engine, METHODS[:2], QUESTIONS[:1], max_tokens=4, repeat=0)


def test_plain_must_come_first(engine: Any) -> None:
    with pytest.raises(ValueError, match="plain decoding"):
        run_benchmark(engine, METHODS[1:], QUESTIONS, max_tokens=4)


def _record(method: str, category: str, tokens: int, seconds: float, ok: bool = True) -> Record:
    metrics = None
    if method != PLAIN and not method.startswith("hf"):
        metrics = {"num_drafts": 2, "num_draft_tokens": 8, "num_accepted_tokens": 4}
    return Record(method, 1, category, 10, tokens, seconds, ok, None if ok else 0, metrics, [])


def test_summary_ratios_and_acceptance() -> None:
    methods = [
        Method(PLAIN, "engine", PLAIN),
        Method(HF_PLAIN, "hf", PLAIN),
        Method("ngram", "engine", "ngram", strategy="ngram"),
        Method("hf-prompt-lookup", "hf", "ngram"),
    ]
    records = [
        _record(PLAIN, "qa", 100, 10.0),
        _record(HF_PLAIN, "qa", 100, 12.5),
        _record("ngram", "qa", 100, 5.0),
        _record("hf-prompt-lookup", "qa", 100, 8.0, ok=False),
        _record(PLAIN, "rag", 50, 10.0),
        _record(HF_PLAIN, "rag", 50, 10.0),
        _record("ngram", "rag", 50, 10.0),
        _record("hf-prompt-lookup", "rag", 50, 10.0),
    ]
    rows = {(r.category, r.method): r for r in summarize(records, methods)}
    qa = rows[("qa", "ngram")]
    assert qa.tokens_per_second == pytest.approx(20.0)
    assert qa.speedup_vs_plain == pytest.approx(2.0)
    assert qa.speedup_vs_peer == pytest.approx(1.6)
    assert qa.peer == "hf-prompt-lookup"
    assert qa.acceptance_rate == pytest.approx(0.5)
    assert qa.mean_accepted_length == pytest.approx(3.0)
    assert rows[("qa", PLAIN)].speedup_vs_peer == pytest.approx(1.25)
    assert rows[("qa", "hf-prompt-lookup")].acceptance_rate is None
    overall = rows[(ALL, "ngram")]
    assert overall.tokens == 150
    assert overall.speedup_vs_plain == pytest.approx((150 / 15) / (150 / 20))
    # a peer's mismatch is reported, but only our methods fail the run
    assert rows[(ALL, "hf-prompt-lookup")].mismatches == 1
    assert failures(list(rows.values())) == []
    assert peer_of(methods[2], methods) is methods[3]
    assert peer_of(methods[3], methods) is None


class FakeVLLM:
    """A vLLM 'engine' for one method: plain greedy of the fake model, one token off if told."""

    def __init__(self, engine: Any, method: Method, log: list[str], off_by_one: bool) -> None:
        self.engine, self.method, self.log, self.off = engine, method, log, off_by_one

    def __enter__(self) -> FakeVLLM:
        self.log.append(f"start {self.method.name}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.log.append(f"stop {self.method.name}")

    def run(self, prompt_ids: list[int], max_tokens: int) -> Any:
        from sage.llm.bench.methods import Output

        self.log.append(f"run {self.method.name}")
        ids = list(self.engine.generate(prompt_ids, max_tokens=max_tokens).token_ids)
        if self.off:
            ids[-1] += 1
        metrics = {"num_drafts": 2, "num_draft_tokens": 8, "num_accepted_tokens": 4}
        return Output(ids, 1.0 if self.method.name == VLLM_PLAIN else 0.5, metrics)


def test_vllm_methods_run_as_blocks_and_are_reported_not_failed(engine: Any) -> None:
    methods = [
        Method(PLAIN, "engine", PLAIN),
        Method(VLLM_PLAIN, "vllm", PLAIN),
        Method("vllm:good", "vllm", "ngram", strategy="good"),
        Method("vllm:off", "vllm", "ngram", strategy="off"),
    ]
    log: list[str] = []
    records = run_benchmark(
        engine,
        methods,
        QUESTIONS,
        max_tokens=6,
        start_vllm=lambda m: FakeVLLM(engine, m, log, off_by_one=m.name == "vllm:off"),
    )
    # one engine per vLLM method: started, warmed up, every question, stopped
    per_block = ["start vllm:plain", *["run vllm:plain"] * (1 + len(QUESTIONS)), "stop vllm:plain"]
    assert log[: len(per_block)] == per_block
    assert len(records) == len(QUESTIONS) * len(methods)
    by_method = {m.name: [r for r in records if r.method == m.name] for m in methods}
    assert all(r.matches_plain for r in by_method["vllm:good"])
    assert all(r.first_mismatch == 5 for r in by_method["vllm:off"])
    rows = summarize(records, methods)
    assert failures(rows) == []  # vLLM's kernels may round differently: reported, not failed
    good = next(r for r in rows if r.category == ALL and r.method == "vllm:good")
    assert good.speedup_vs_plain == pytest.approx(2.0)  # against vllm:plain, same engine
    assert good.acceptance_rate == pytest.approx(0.5)


def test_vllm_methods_need_a_starter(engine: Any) -> None:
    methods = [Method(PLAIN, "engine", PLAIN), Method(VLLM_PLAIN, "vllm", PLAIN)]
    with pytest.raises(ValueError, match="start_vllm"):
        run_benchmark(engine, methods, QUESTIONS, max_tokens=4)


def test_plan_adds_vllm_rows_with_resolved_strategies() -> None:
    from sage.llm.bench.methods import plan

    pytest.importorskip("sage_llm_strategy_ngram")
    methods = plan(["ngram:num_speculative_tokens=3"], peers=False, engines=["vllm"])
    assert [m.name for m in methods] == [
        PLAIN,
        VLLM_PLAIN,
        "ngram:num_speculative_tokens=3",
        "vllm:ngram:num_speculative_tokens=3",
    ]
    assert methods[3].resolved is methods[2].resolved  # resolved once, shared by both engines
    assert methods[3].resolved.num_speculative_tokens == 3
    with pytest.raises(ValueError, match="unknown engine"):
        plan([], engines=["tgi"])
