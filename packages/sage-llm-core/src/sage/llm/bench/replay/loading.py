"""Reading traces for a replay, and loading a model to record more into them."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sage.llm.bench.traces import TraceSet


def load_traces(paths: Sequence[Path], pass_costs: str | None, max_k: int) -> TraceSet:
    """The traces of ``paths`` as one set (the first file's model and cost table), with
    ``pass_costs`` (seconds of a pass of 1, 2, ... tokens, the last carried on up to
    ``max_k + 1``) replacing the measured verify costs; the draft's own costs stay as
    measured. Raises ``ValueError`` for a malformed ``pass_costs``."""
    sets = [TraceSet.load(p) for p in paths]
    traces = TraceSet(sets[0].model, [t for s in sets for t in s.traces], sets[0].costs)
    if pass_costs:
        try:
            seconds = [float(v) for v in pass_costs.split(",")]
        except ValueError:
            raise ValueError(
                f"--pass-costs needs numbers separated by commas, got {pass_costs!r}"
            ) from None
        if not seconds or min(seconds) <= 0:
            raise ValueError("--pass-costs needs positive numbers")
        traces.costs = dataclasses.replace(  # the draft's own costs stay as measured
            traces.costs,
            pass_seconds=seconds + [seconds[-1]] * (max_k + 1 - len(seconds)),
            prefill_seconds=traces.costs.prefill_seconds * seconds[0] / traces.costs.step(1),
            overhead_seconds=0.0,
            machine={},
        )
    return traces


def pick_questions(questions: Sequence[Any], skip: int, limit: int) -> list[Any]:
    """Per category, the questions after the first ``skip``, at most ``limit`` of them."""
    picked = []
    seen: dict[str, int] = defaultdict(int)
    for q in questions:
        seen[q.category] += 1
        if skip < seen[q.category] <= skip + limit:
            picked.append(q)
    return picked


def load_model_for_traces(name: str, traces: TraceSet) -> Any:
    """A model to run over ``traces`` as the draft proposer loads one: the traces' dtype,
    PyTorch's row-major weights."""
    from sage.llm.engines.transformers.loading import load_model, set_cpu_environment
    from sage.llm.models import resolve_model

    set_cpu_environment()
    dtype = traces.costs.machine.get("dtype", "torch.float32").removeprefix("torch.")
    model, _ = load_model(
        str(resolve_model(name)), dtype=dtype, require_tokenizer=False, weight_layout="row"
    )
    return model
