"""Control-plane hooks through pluggy, and metrics from Python and as Prometheus text."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from sage.llm import hookimpl
from sage.llm.control_plane import Completion, ControlPlaneManager
from sage.llm.control_plane.hooks import ControlPlanePluginError
from sage.llm.testing.control_plane import ScriptedBackend


class Recorder:
    """An exporter-style plugin: records every event it is told about."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    @hookimpl
    def on_engine_started(self, manager: Any, engine_id: str, info: dict[str, Any]) -> None:
        self.events.append(("started", info["state"]))

    def on_engine_stopped(self, manager: Any, engine_id: str, info: dict[str, Any]) -> None:
        self.events.append(("stopped", info["state"]))

    def on_request_finished(
        self, manager: Any, engine_id: str, completion: Completion | None, outcome: str
    ) -> None:
        self.events.append((outcome, completion.text if completion else ""))


def test_observer_hooks_see_the_engine_life_and_each_request_once() -> None:
    recorder = Recorder()
    cp = ControlPlaneManager("never", plugins=[recorder], load_entry_points=False)
    eid = cp.start_engine("m", engine=ScriptedBackend)
    cp.generate(engine_id=eid, prompt="ab")
    cp.stop_engine(eid)
    cp.shutdown()
    assert recorder.events == [("started", "ready"), ("ok", "ba"), ("stopped", "stopped")]


def test_a_plugin_with_a_wrong_signature_is_refused_naming_it() -> None:
    class Broken:
        def on_engine_started(self, manager: Any, engine: str) -> None: ...

    with pytest.raises(ControlPlanePluginError, match="on_engine_started"):
        ControlPlaneManager(plugins=[Broken()], load_entry_points=False)


def test_a_plugin_that_raises_does_not_break_serving(caplog: pytest.LogCaptureFixture) -> None:
    class Faulty:
        def on_request_finished(
            self, manager: Any, engine_id: str, completion: Any, outcome: str
        ) -> None:
            raise RuntimeError("exporter down")

    cp = ControlPlaneManager("never", plugins=[Faulty()], load_entry_points=False)
    try:
        eid = cp.start_engine("m", engine=ScriptedBackend)
        assert cp.generate(engine_id=eid, prompt="ok").text == "ko"
        assert "control-plane plugin 'Faulty' failed in on_request_finished" in caplog.text
    finally:
        cp.shutdown()


def test_status_reports_counts_latencies_and_per_strategy_numbers(cp: ControlPlaneManager) -> None:
    eid = cp.start_engine("m", engine=ScriptedBackend, delay_s=0.001)
    for i in range(3):
        cp.generate(engine_id=eid, prompt=f"prompt {i}")
    info = cp.engine_info(eid)
    metrics = info["metrics"]
    assert metrics["requests"]["ok"] == 3
    assert metrics["by_strategy"]["none"]["generated_tokens"] == 3 * len("prompt 0")
    assert metrics["latency"]["ttft_s"]["count"] == 3
    lat = metrics["latency"]["latency_s"]
    assert 0 < lat["p50"] <= lat["p99"]
    assert cp.status()["policy"]["name"] == "never"


def test_prometheus_text_per_manager_registry(cp: ControlPlaneManager) -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    eid = cp.start_engine("m", engine=ScriptedBackend, served_model_name="alpha")
    cp.generate(engine_id=eid, prompt="abcd")
    other = ControlPlaneManager("never", load_entry_points=False)
    try:
        families = {
            f.name: f for f in parser.text_string_to_metric_families(cp.prometheus_text().decode())
        }
        assert families["sage_llm_requests"].type == "counter"
        ok = [s for s in families["sage_llm_requests"].samples if s.labels.get("outcome") == "ok"]
        assert [(s.labels["model"], s.value) for s in ok if s.name.endswith("_total")] == [
            ("alpha", 1.0)
        ]
        tokens = [
            s for s in families["sage_llm_generated_tokens"].samples if s.name.endswith("_total")
        ]
        assert [(s.labels["strategy"], s.value) for s in tokens] == [("none", 4.0)]
        assert "alpha" not in other.prometheus_text().decode()  # its own registry
    finally:
        other.shutdown()


def test_importing_the_control_plane_stays_light() -> None:
    code = (
        "import sys, sage.llm, sage.llm.control_plane, sage.llm.server;"
        "heavy = [m for m in ('torch', 'transformers', 'vllm', 'starlette', 'uvicorn', "
        "'prometheus_client') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
