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
    import sage.llm.engines.vllm.config as vb

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
    import sage.llm.engines.vllm.config as vb
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


def test_counters_come_from_each_engines_own_stat_logger() -> None:
    """Every vLLM engine started in a process unregisters the earlier engines' collectors from
    Prometheus's registry, so ``llm.get_metrics()`` sees only the last one: the first engine of
    the load benchmark read 0 drafts while it speculated. Each engine's counters are read from
    its own stat logger instead (laid out here as vLLM 0.32 lays it out; the vllm session
    checks the real one)."""
    prometheus_client = pytest.importorskip("prometheus_client")
    from sage.llm.engines.vllm.metrics import (
        ACCEPTED_PER_POSITION,
        GENERATION_TOKENS,
        NUM_DRAFTS,
        read_metrics,
        snapshot,
    )

    def counter(name: str, labels: list[str]) -> Any:
        return prometheus_client.Counter(name, "doc", labels, registry=None)

    def fake_llm(served: str, drafts: int | None) -> Any:
        labels = ["model_name", "engine"]
        logger = type("PrometheusStatLogger", (), {})()
        spec = type("SpecDecodingProm", (), {})()
        logger.spec_decoding_prom = spec
        for attr, name in (("counter_prompt_tokens", "p"), ("counter_generation_tokens", "g")):
            setattr(logger, attr, {0: counter(name, labels).labels(served, "0")})
        logger.counter_generation_tokens[0].inc(40)
        if drafts is not None:  # vLLM creates the speculative counters only when configured
            for attr in ("drafts", "draft_tokens", "accepted_tokens"):
                child = counter(f"c_{attr}", labels).labels(served, "0")
                setattr(spec, f"counter_spec_decode_num_{attr}", {0: child})
            spec.counter_spec_decode_num_drafts[0].inc(drafts)
            per_pos = counter("pos", [*labels, "position"])
            spec.counter_spec_decode_num_accepted_tokens_per_pos = {
                0: [per_pos.labels(served, "0", str(i)) for i in range(3)]
            }
            spec.counter_spec_decode_num_accepted_tokens_per_pos[0][0].inc(5)
        manager = type("StatLoggerManager", (), {"stat_loggers": [object(), logger]})()
        engine = type("LLMEngine", (), {"logger_manager": manager})()

        def registry_view() -> list[Any]:
            raise AssertionError("the process-wide registry was read")

        return type("LLM", (), {"llm_engine": engine, "get_metrics": staticmethod(registry_view)})()

    first, plain = fake_llm("first", drafts=7), fake_llm("plain", drafts=None)
    mine = snapshot(read_metrics(first), "first")
    assert mine.counters[NUM_DRAFTS] == 7
    assert mine.counters[GENERATION_TOKENS] == 40
    assert mine.per_position == [5, 0, 0]
    assert not snapshot(read_metrics(plain), "plain").has_spec_decode
    assert ACCEPTED_PER_POSITION not in {m.name for m in read_metrics(plain)}

    @dataclass
    class _Registry:
        name: str
        labels: dict[str, str]
        value: int

    unknown = type("LLM", (), {"get_metrics": lambda self: [_Registry(NUM_DRAFTS, {}, 3)]})()
    assert snapshot(read_metrics(unknown)).counters[NUM_DRAFTS] == 3  # another layout: registry


class _CharTokenizer:
    """The part of vLLM's tokenizer (``TokenizerLike``) that tokenizing uses: one id per
    character, 0 as BOS."""

    chat_template = None

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": [0] * add_special_tokens + [ord(c) for c in text]}

    def __len__(self) -> int:
        return 128

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i) if i else "<s>" for i in ids)


def test_vllm_tokenizes_with_the_tokenizer_it_loaded(model_dir: Path) -> None:
    """``/tokenize`` on a vLLM engine uses ``LLM.get_tokenizer()`` (what ``load`` keeps as
    ``tokenizer``) and vLLM's resolved ``max_model_len``; before loading it says it cannot."""
    from types import SimpleNamespace

    from sage.llm.control_plane import InvalidRequestError
    from sage.llm.control_plane.errors import NotSupportedError

    backend = VLLMBackend(str(model_dir), None, {})
    with pytest.raises(NotSupportedError, match="does not tokenize"):
        backend.tokenize(prompt="ab")
    assert backend.max_model_len() is None
    backend.tokenizer = _CharTokenizer()  # as load() sets it
    backend.engine = SimpleNamespace(model_config=SimpleNamespace(max_model_len=2048))
    assert backend.tokenize(prompt="ab") == [0, 97, 98]
    assert backend.tokenize(prompt="ab", add_special_tokens=False) == [97, 98]
    assert backend.detokenize([0, 97, 98]) == "<s>ab"
    assert backend.max_model_len() == 2048
    with pytest.raises(InvalidRequestError, match="outside the vocabulary") as info:
        backend.detokenize([97, 128])
    assert info.value.param == "tokens"
    with pytest.raises(InvalidRequestError, match="no chat template"):
        backend.tokenize(messages=[{"role": "user", "content": "hi"}])
