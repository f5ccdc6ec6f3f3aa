"""Engines: start, states, routing, stop, failures and restarts (scripted engine, no model)."""

from __future__ import annotations

import threading
import time

import pytest

from sage.llm.control_plane import (
    ControlPlaneManager,
    EngineFailedError,
    EngineNotFoundError,
    EngineStartError,
    EngineState,
    EngineStoppedError,
    EngineUnavailableError,
    InvalidRequestError,
)
from sage.llm.testing.control_plane import ScriptedBackend, scripted_text


def test_start_list_info_and_stop(cp: ControlPlaneManager) -> None:
    eid = cp.start_engine("m", engine=ScriptedBackend, served_model_name="alpha")
    [info] = cp.list_engines()
    assert (info["engine_id"], info["state"], info["model"]) == (eid, "ready", "alpha")
    assert info["capabilities"]["switch_per_request"] is True
    assert cp.models() == ["alpha"]
    assert cp.generate(model="alpha", prompt="hello").text == "olleh"
    cp.stop_engine(eid)
    assert cp.engine_info(eid)["state"] == "stopped"
    assert cp.models() == []
    with pytest.raises(EngineUnavailableError, match="stopped"):
        cp.submit(engine_id=eid, prompt="x")


def test_start_failure_raises_with_the_cause_and_stays_listed(cp: ControlPlaneManager) -> None:
    with pytest.raises(EngineStartError, match="out of memory") as info:
        cp.start_engine("m", engine=ScriptedBackend, engine_id="bad", fail_load="out of memory")
    assert isinstance(info.value.__cause__, RuntimeError)
    engine = cp.engine_info("bad")
    assert engine["state"] == "failed"
    assert "out of memory" in engine["error"]


def test_bad_arguments_are_refused_before_anything_starts(cp: ControlPlaneManager) -> None:
    with pytest.raises(InvalidRequestError, match="unknown engine 'tgi'"):
        cp.start_engine("m", engine="tgi")
    with pytest.raises(InvalidRequestError, match="unknown option"):
        cp.start_engine("m", engine=ScriptedBackend, colour="red")
    assert cp.list_engines() == []
    with pytest.raises(EngineNotFoundError, match="no engine 'nope'"):
        cp.engine_info("nope")


def test_routing_by_model_name_picks_the_least_loaded_ready_engine(
    cp: ControlPlaneManager,
) -> None:
    gate = threading.Event()
    busy = cp.start_engine("m", engine=ScriptedBackend, served_model_name="a", gate=gate)
    idle = cp.start_engine("m", engine=ScriptedBackend, served_model_name="a")
    cp.start_engine("m", engine=ScriptedBackend, served_model_name="b")
    first = cp.submit(engine_id=busy, prompt="xy")
    assert cp.submit(model="a", prompt="ab").result(5).engine_id == idle
    with pytest.raises(EngineNotFoundError, match="served models: a, b"):
        cp.submit(model="c", prompt="x")
    gate.set()
    assert first.result(5).text == "yx"


def test_an_engine_that_dies_fails_its_running_and_queued_requests(cp: ControlPlaneManager) -> None:
    failed: list[str] = []

    class Observer:
        def on_engine_failed(
            self, manager: object, engine_id: str, info: dict, error: BaseException
        ) -> None:
            failed.append(f"{engine_id}: {error}")

    cp.plugins.register(Observer())
    eid = cp.start_engine("m", engine=ScriptedBackend, die_after_tokens=3, delay_s=0.01)
    handles = [cp.submit(engine_id=eid, prompt="abcdef") for _ in range(3)]
    for handle in handles:
        with pytest.raises(EngineFailedError, match="died after 3 tokens"):
            handle.result(10)
    assert cp.engine_info(eid)["state"] == "failed"
    assert failed == [f"{eid}: scripted engine died after 3 tokens"]
    with pytest.raises(EngineUnavailableError, match="failed"):
        cp.submit(engine_id=eid, prompt="x")
    assert cp.engine_info(eid)["metrics"]["requests"]["error"] == 3


def test_restart_on_failure_brings_the_engine_back() -> None:
    cp = ControlPlaneManager("never", restart_policy="on-failure:1", load_entry_points=False)
    try:
        eid = cp.start_engine("m", engine=ScriptedBackend, die_after_tokens=4)
        with pytest.raises(EngineFailedError):
            cp.generate(engine_id=eid, prompt="abcdef")
        deadline = time.monotonic() + 5
        while cp.engine_info(eid)["state"] != "ready" and time.monotonic() < deadline:
            time.sleep(0.01)
        info = cp.engine_info(eid)
        assert (info["state"], info["restarts"]) == ("ready", 1)
        assert cp.generate(engine_id=eid, prompt="abc").text == "cba"  # 3 tokens < 4
        with pytest.raises(EngineFailedError):
            cp.generate(engine_id=eid, prompt="abcdef")
        time.sleep(0.2)
        assert cp.engine_info(eid)["state"] == "failed"  # restarts used up: no loop
    finally:
        cp.shutdown()


def test_stop_with_drain_finishes_every_request(cp: ControlPlaneManager) -> None:
    eid = cp.start_engine("m", engine=ScriptedBackend, delay_s=0.005)
    handles = [cp.submit(engine_id=eid, prompt=f"req{i}") for i in range(5)]
    cp.stop_engine(eid, drain=True, timeout=10)
    assert [h.result(0).text for h in handles] == [scripted_text(f"req{i}", 128) for i in range(5)]
    assert cp.engine_info(eid)["state"] == EngineState.STOPPED.value


def test_stop_without_drain_fails_running_and_queued_once_each(cp: ControlPlaneManager) -> None:
    started = threading.Event()
    eid = cp.start_engine("m", engine=ScriptedBackend, gate=threading.Event(), started=started)
    handles = [cp.submit(engine_id=eid, prompt="abc") for _ in range(4)]
    assert started.wait(5)
    cp.stop_engine(eid, drain=False, timeout=10)
    for handle in handles:
        with pytest.raises(EngineStoppedError):
            handle.result(0)
        finals = [e for e in handle.events(timeout=1) if e.final]
        assert len(finals) == 1
    assert cp.engine_info(eid)["metrics"]["requests"]["error"] == 4


@pytest.mark.parametrize("value", ["sometimes", "on-failure:x", "on-failure:-1"])
def test_a_bad_restart_policy_is_refused(value: str) -> None:
    with pytest.raises(InvalidRequestError, match=r"restart policy|max_restarts"):
        ControlPlaneManager(restart_policy=value, load_entry_points=False)
