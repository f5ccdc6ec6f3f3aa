"""A request stream run in order through one engine, so caches across requests count.

Spec-Bench's questions are independent; an agent's requests are not (the same templates and
files again and again, follow-ups quoting earlier answers, retries). A strategy that learns
across requests (``suffix`` caches earlier outputs) only shows its gain when the stream runs in
order through one engine. :func:`run_workload` does that for every method: each has its own
proposer from the first request on (a fresh engine around the loaded model, so no method sees
another's pass or the warm-up), requests interleaved across methods as the question bench does,
and every output of ours is checked against plain greedy. vLLM methods run in blocks, one
engine per method, the requests sent in the same order.

A workload file is JSON lines ``{"id", "category", "prompt"}``; a line with ``"quotes": ID``
is a follow-up whose prompt holds ``{answer}``, replaced by that earlier request's answer
(plain greedy decoding's, which every lossless method reproduces).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from sage.llm.bench.methods import PLAIN, Method, Output, Runner
from sage.llm.bench.questions import Question, QuestionsError
from sage.llm.bench.runner import WARMUP_PROMPT, BlockFactory, Record, _record

BUNDLED = ("agentic",)
"""Workloads shipped with the core (``bench/data/<name>.jsonl``; see data/README.md)."""


@dataclass(frozen=True)
class Request:
    request_id: str
    category: str
    prompt: str
    quotes: str | None = None
    """The earlier request whose answer replaces ``{answer}`` in ``prompt``."""

    def render(self, answers: dict[str, str]) -> str:
        if self.quotes is None:
            return self.prompt
        return self.prompt.replace("{answer}", answers[self.quotes])


def workload_path(name_or_path: str | Path) -> Path:
    """A bundled workload's file (``"agentic"``) or the path given."""
    if str(name_or_path) in BUNDLED:
        data = resources.files("sage.llm.bench").joinpath(f"data/{name_or_path}.jsonl")
        return Path(str(data))
    return Path(name_or_path)


def load_workload(name_or_path: str | Path) -> list[Request]:
    """Read a workload (see the module docstring), checking that follow-ups quote earlier ids."""
    path = workload_path(name_or_path)
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as exc:
        raise QuestionsError(
            f"cannot read workload {path}: {exc}. Pass a bundled name "
            f"({', '.join(BUNDLED)}) or a JSON-lines file."
        ) from exc
    out: list[Request] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            request = Request(
                str(obj["id"]), str(obj["category"]), str(obj["prompt"]), obj.get("quotes")
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise QuestionsError(
                f"{path}:{number}: expected a JSON object with 'id', 'category' and 'prompt': "
                f"{exc}."
            ) from exc
        if request.request_id in seen:
            raise QuestionsError(f"{path}:{number}: id {request.request_id!r} appears twice.")
        if request.quotes is not None and (
            request.quotes not in seen or "{answer}" not in request.prompt
        ):
            raise QuestionsError(
                f"{path}:{number}: a follow-up quotes an earlier request's id (got "
                f"{request.quotes!r}) and holds {{answer}} in its prompt."
            )
        seen.add(request.request_id)
        out.append(request)
    if not out:
        raise QuestionsError(f"workload {path} has no requests.")
    return out


def run_workload(
    engine: Any,
    methods: Sequence[Method],
    requests: Sequence[Request],
    *,
    max_tokens: int,
    chat: bool = True,
    on_record: Callable[[Record], None] | None = None,
    start_vllm: BlockFactory | None = None,
) -> list[Record]:
    """Run ``requests`` in order for every method; ``methods[0]`` must be plain decoding."""
    if not methods or methods[0].name != PLAIN:
        raise ValueError("the first method must be plain decoding: it is the reference output")
    blocked = [m for m in methods if m.kind == "vllm"]
    interleaved = [m for m in methods if m.kind != "vllm"]
    if blocked and start_vllm is None:
        raise ValueError("vLLM methods need start_vllm (a factory of vLLM engines)")
    warm = engine.encode_prompt(WARMUP_PROMPT, chat=chat)
    warm_up = Runner(engine)
    for method in interleaved:
        warm_up.run(method, warm, min(8, max_tokens))
    # Same model, no proposers yet: every method's cross-request state starts empty here.
    runner = Runner(type(engine)(engine.model, engine.tokenizer, name=engine.name))
    answers: dict[str, str] = {}
    prompts: list[tuple[Question, list[int], list[int]]] = []
    records: list[Record] = []
    for request in requests:
        question = Question(request.request_id, request.category, request.render(answers))
        prompt_ids = engine.encode_prompt(question.prompt, chat=chat)
        runs: dict[str, Output] = {}
        for method in interleaved:
            runs[method.name] = runner.run(method, prompt_ids, max_tokens)
        reference = runs[PLAIN].token_ids
        answers[request.request_id] = engine.decode(reference)
        prompts.append((question, prompt_ids, reference))
        for method in interleaved:
            _record(
                records, method, question, prompt_ids, reference, [runs[method.name]], on_record
            )
    for method in blocked:
        assert start_vllm is not None
        with start_vllm(method) as block:
            block.run(warm, min(8, max_tokens))
            for question, prompt_ids, reference in prompts:
                out = block.run(prompt_ids, max_tokens)
                _record(records, method, question, prompt_ids, reference, [out], on_record)
    return records
