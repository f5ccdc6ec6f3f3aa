"""The vLLM backend without vLLM: option pass-through (tensor/pipeline parallel, Ray) and the
continuous-batching loop against a stand-in for vLLM's ``LLMEngine``.

The real engine runs in ``nox -s vllm`` territory; here we check what the control plane does
with it: every queued request joins the running batch, text streams per step, cancellation
becomes ``abort_request``, and each request ends exactly once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sage.llm.control_plane import (
    ControlPlaneManager,
    Decision,
    GenerationRequest,
    RequestCancelledError,
)
from sage.llm.control_plane.vllm_backend import VLLMBackend
from sage.llm.testing.control_plane import ScriptedStrategy


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    (tmp_path / "config.json").write_text('{"vocab_size": 80}')
    return tmp_path


def test_engine_options_pass_through_to_vllm(model_dir: Path) -> None:
    backend = VLLMBackend(
        str(model_dir),
        ScriptedStrategy(),
        {
            "tensor_parallel_size": 2,
            "pipeline_parallel_size": 2,
            "distributed_executor_backend": "ray",
            "max_num_seqs": 32,
        },
    )
    args = backend.engine_args()
    assert (args["tensor_parallel_size"], args["pipeline_parallel_size"]) == (2, 2)
    assert args["distributed_executor_backend"] == "ray"
    assert args["max_num_seqs"] == 32
    assert args["speculative_config"]["method"] == "ngram"
    assert args["model"] == str(model_dir)


def test_policy_never_starts_vllm_without_speculation(model_dir: Path) -> None:
    backend = VLLMBackend(str(model_dir), ScriptedStrategy(), {}, speculate_at_start=False)
    assert "speculative_config" not in backend.engine_args()


def test_cpu_memory_default_unless_the_caller_sets_one(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sage.llm.engines.vllm.cpu.is_cpu_platform", lambda: True)
    args = VLLMBackend(str(model_dir), None, {}).engine_args()
    assert args["kv_cache_memory_bytes"] > 0
    assert args["enforce_eager"] is True
    mine = VLLMBackend(str(model_dir), None, {"kv_cache_memory_bytes": 1 << 28}).engine_args()
    assert mine["kv_cache_memory_bytes"] == 1 << 28


@dataclass
class _Out:
    text: str
    token_ids: list[int]
    finish_reason: str | None


@dataclass
class _RequestOutput:
    request_id: str
    outputs: list[_Out]
    finished: bool
    prompt_token_ids: list[int] = field(default_factory=lambda: [1, 2, 3])


class FakeLLMEngine:
    """vLLM's LLMEngine surface the backend uses: one character per request per step."""

    def __init__(self) -> None:
        self.live: dict[str, tuple[str, int]] = {}
        self.batch_sizes: list[int] = []
        self.aborted: list[str] = []
        self.lock = threading.Lock()

    def add_request(self, request_id: str, prompt: Any, params: Any) -> None:
        with self.lock:
            self.live[request_id] = (str(prompt)[::-1][: params["max_tokens"]], 0)

    def abort_request(self, request_ids: list[str]) -> None:
        for rid in request_ids:
            self.aborted.append(rid)
            self.live.pop(rid, None)

    def step(self) -> list[_RequestOutput]:
        time.sleep(0.002)
        self.batch_sizes.append(len(self.live))
        outputs = []
        for rid, (text, done) in list(self.live.items()):
            done += 1
            finished = done >= len(text)
            out = _Out(text[:done], list(range(done)), "length" if finished else None)
            outputs.append(_RequestOutput(rid, [out], finished))
            if finished:
                del self.live[rid]
            else:
                self.live[rid] = (text, done)
        return outputs


class FakeVLLM(VLLMBackend):
    engines: list[FakeLLMEngine] = []

    def load(self) -> None:
        self._strategy_label = "ngram" if self.speculate_at_start else "none"
        self.engine = FakeLLMEngine()
        type(self).engines.append(self.engine)

        class _LLM:
            @staticmethod
            def get_metrics() -> list[Any]:
                return []

        self.llm = _LLM()

    def close(self) -> None:
        pass

    def sampling_params(self, request: GenerationRequest) -> Any:
        return {"max_tokens": request.max_tokens}

    def prompt(self, request: GenerationRequest) -> Any:
        return request.prompt


def test_continuous_batching_streams_and_ends_each_request_once() -> None:
    decisions: list[Decision] = []

    class Observer:
        def on_policy_decision(self, manager: Any, engine_id: str, decision: Decision) -> None:
            decisions.append(decision)

    cp = ControlPlaneManager("adaptive", plugins=[Observer()], load_entry_points=False)
    try:
        eid = cp.start_engine("m", ScriptedStrategy(), engine=FakeVLLM)
        engine = FakeVLLM.engines[-1]
        prompts = [f"request {i:02d} " * 3 for i in range(8)]
        handles = [cp.submit(engine_id=eid, prompt=p, max_tokens=30) for p in prompts]
        texts = [h.result(10).text for h in handles]
        assert texts == [p[::-1][:30] for p in prompts]
        assert max(engine.batch_sizes) > 1  # requests shared steps
        assert any("batch" in d.reason and not d.speculate for d in decisions)
        assert cp.engine_info(eid)["metrics"]["requests"]["ok"] == 8
        assert cp.engine_info(eid)["capabilities"]["batching"] is True
    finally:
        cp.shutdown()


def test_cancel_aborts_the_request_in_vllm() -> None:
    cp = ControlPlaneManager("never", load_entry_points=False)
    try:
        eid = cp.start_engine("m", engine=FakeVLLM)
        engine = FakeVLLM.engines[-1]
        handle = cp.submit(engine_id=eid, prompt="x" * 5000, max_tokens=5000)
        next(iter(handle.events(timeout=5)))  # it is running
        handle.cancel()
        with pytest.raises(RequestCancelledError):
            handle.result(5)
        assert engine.aborted == [handle.id]
        assert cp.generate(engine_id=eid, prompt="abc").text == "cba"
    finally:
        cp.shutdown()


@pytest.mark.parametrize("switch", [True, False])
def test_adaptive_hands_vllm_a_load_switch(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, switch: bool
) -> None:
    """``disable_by_batch_size`` where vLLM has it, else its batch-size table with k = 0 from
    the policy's max_batch (vLLM 0.32 has only the table)."""
    import sage.llm.control_plane.vllm_backend as vb

    monkeypatch.setattr(vb, "_has_batch_switch", lambda: switch)
    monkeypatch.setattr(vb, "_has_batch_table", lambda: True)
    cp = ControlPlaneManager("adaptive", load_entry_points=False)
    backend = VLLMBackend(str(model_dir), ScriptedStrategy(), {})
    backend.max_batch_for_speculation = 4
    spec = backend.engine_args()["speculative_config"]
    if switch:
        assert spec["disable_by_batch_size"] == 4
        assert "num_speculative_tokens_per_batch_size" not in spec
    else:
        k = spec["num_speculative_tokens"]
        assert spec["num_speculative_tokens_per_batch_size"] == [[1, 3, k], [4, 4, 0]]
    cp.shutdown()


def test_a_strategys_own_batch_table_and_custom_class_are_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sage.llm.control_plane.vllm_backend as vb
    from sage.llm.control_plane.vllm_backend import add_load_switch

    monkeypatch.setattr(vb, "_has_batch_switch", lambda: False)
    monkeypatch.setattr(vb, "_has_batch_table", lambda: True)

    own = {
        "method": "ngram",
        "num_speculative_tokens": 8,
        "num_speculative_tokens_per_batch_size": [[1, 64, 8]],
    }
    add_load_switch(own, 4)
    assert own["num_speculative_tokens_per_batch_size"] == [[1, 64, 8]]
    custom = {"method": "custom_class", "num_speculative_tokens": 8}
    add_load_switch(custom, 4)
    assert custom == {"method": "custom_class", "num_speculative_tokens": 8}


def test_each_vllm_engine_reads_only_its_own_counters(model_dir: Path) -> None:
    """vLLM's counters are process-wide; an engine without speculation next to one with it
    must not report the other's drafts (the load benchmark runs three in one process)."""
    from sage.llm.engines.vllm.metrics import NUM_ACCEPTED_TOKENS, NUM_DRAFTS, snapshot

    @dataclass
    class _Metric:
        name: str
        labels: dict[str, str]
        value: int

    mine = VLLMBackend(str(model_dir), ScriptedStrategy(), {})
    other = VLLMBackend(str(model_dir), None, {}, speculate_at_start=False)
    mine.engine_args()
    other.engine_args()
    assert mine.metrics_name != other.metrics_name
    metrics = [
        _Metric(NUM_DRAFTS, {"model_name": mine.metrics_name, "engine": "0"}, 7),
        _Metric(NUM_ACCEPTED_TOKENS, {"model_name": mine.metrics_name, "engine": "0"}, 12),
    ]
    assert snapshot(metrics, mine.metrics_name).counters[NUM_DRAFTS] == 7
    assert not snapshot(metrics, other.metrics_name).has_spec_decode
    named = VLLMBackend(str(model_dir), None, {"served_model_name": ["a", "b"]})
    assert named.engine_args()["served_model_name"] == ["a", "b"]
    assert named.metrics_name == "a"
