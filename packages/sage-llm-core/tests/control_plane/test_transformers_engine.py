"""The control plane on the reference engine with a tiny saved model (no download)."""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sage.llm.control_plane import ControlPlaneManager, EngineFailedError
from sage.llm.errors import UnknownStrategyError

PROMPTS = ["abc abc abc abc", "hello hello hello", "the cat the cat the", "xyz"]


@pytest.fixture(scope="module")
def plain_greedy(tiny_dir: Path) -> dict[str, list[int]]:
    from sage.llm.engines.transformers import TransformersEngine

    engine = TransformersEngine.from_pretrained(str(tiny_dir))
    return {p: engine.generate(p, max_tokens=24, chat=False).token_ids for p in PROMPTS}


def test_the_seed_example_starts_an_engine_with_a_strategy_object(tiny_dir: Path) -> None:
    from sage.llm import NgramStrategy

    cp = ControlPlaneManager(scheduling_policy="adaptive")
    try:
        engine_id = cp.start_engine(model_id=str(tiny_dir), speculative_strategy=NgramStrategy(n=5))
        info = cp.engine_info(engine_id)
        expected = ("ready", NgramStrategy(n=5).to_string(), "transformers")
        assert (info["state"], info["strategy"], info["engine"]) == expected
        assert cp.generate(prompt="abc abc abc", max_tokens=8).completion_tokens == 8
    finally:
        cp.shutdown()


@pytest.mark.parametrize("policy", ["always", "never", "adaptive"])
def test_every_policy_gives_plain_greedy_output_under_concurrency(
    tiny_dir: Path, plain_greedy: dict[str, list[int]], policy: str
) -> None:
    cp = ControlPlaneManager(policy, load_entry_points=False)
    try:
        eid = cp.start_engine(str(tiny_dir), "ngram:n=2,num_speculative_tokens=3")
        work = PROMPTS * 3
        with ThreadPoolExecutor(4) as pool:
            done = list(
                pool.map(lambda p: cp.generate(engine_id=eid, prompt=p, max_tokens=24), work)
            )
        assert [c.token_ids for c in done] == [plain_greedy[p] for p in work]
        modes = {c.speculative for c in done}
        assert modes == {"always": {True}, "never": {False}, "adaptive": {True, False}}[policy]
        stats = cp.engine_info(eid)["metrics"]
        assert stats["requests"]["ok"] == len(work)
        if policy != "never":
            assert stats["by_strategy"]["ngram:n=2,num_speculative_tokens=3"]["num_drafts"] > 0
    finally:
        cp.shutdown()


def test_an_unknown_strategy_is_refused_before_loading(
    cp: ControlPlaneManager, tiny_dir: Path
) -> None:
    with pytest.raises(UnknownStrategyError, match="ngarm"):
        cp.start_engine(str(tiny_dir), "ngarm")
    assert cp.list_engines() == []


def test_a_model_that_dies_mid_request_fails_it_and_the_queue(tiny_dir: Path) -> None:
    from sage.llm.control_plane.transformers_backend import TransformersBackend

    class DyingBackend(TransformersBackend):
        def build_engine(self, engine_class: Any) -> Any:
            engine = super().build_engine(engine_class)
            forward = engine.model.forward
            calls = {"n": 0}

            @functools.wraps(forward)  # keeps the signature the engine inspects
            def broken(*args: Any, **kwargs: Any) -> Any:
                calls["n"] += 1
                if calls["n"] > 6:
                    raise RuntimeError("CUDA error: device lost")  # engine-fatal
                return forward(*args, **kwargs)

            engine.model.forward = broken
            return engine

    cp = ControlPlaneManager("never", load_entry_points=False)
    try:
        eid = cp.start_engine(str(tiny_dir), engine=DyingBackend)
        first = cp.submit(engine_id=eid, prompt="abc", max_tokens=20)
        queued = cp.submit(engine_id=eid, prompt="def", max_tokens=4)
        for handle in (first, queued):
            with pytest.raises(EngineFailedError, match="device lost"):
                handle.result(30)
        assert cp.engine_info(eid)["state"] == "failed"
    finally:
        cp.shutdown()


def test_a_policy_can_change_k_per_request_without_changing_tokens(
    tiny_dir: Path, plain_greedy: dict[str, list[int]]
) -> None:
    from sage.llm.control_plane import Decision, LoadView, SchedulingPolicy

    class AlternatingK(SchedulingPolicy):
        name = "alternating-k"

        def __init__(self) -> None:
            self.calls = 0

        def decide(self, view: LoadView) -> Decision:
            self.calls += 1
            return Decision(True, "test", num_speculative_tokens=1 + self.calls % 2 * 2)

    cp = ControlPlaneManager(AlternatingK(), load_entry_points=False)
    try:
        eid = cp.start_engine(str(tiny_dir), "ngram:n=2")
        done = [cp.generate(engine_id=eid, prompt=p, max_tokens=24) for p in PROMPTS]
        assert [c.token_ids for c in done] == [plain_greedy[p] for p in PROMPTS]
        assert {c.strategy for c in done} == {
            "ngram:n=2,num_speculative_tokens=1",
            "ngram:n=2,num_speculative_tokens=3",
        }
    finally:
        cp.shutdown()
