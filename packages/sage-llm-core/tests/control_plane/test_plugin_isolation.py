"""Issue 20: one broken control-plane plugin neither stops the control plane nor the others.

Installed plugins are real wheels unpacked as pip would (:mod:`sage.llm.testing.fake_plugins`);
the control plane discovers them through the ``sage.llm.control_plane`` entry-point group.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from sage.llm import discovery, hookimpl
from sage.llm.control_plane import ControlPlaneManager
from sage.llm.control_plane.errors import UnknownPolicyError
from sage.llm.control_plane.hooks import ControlPlanePluginError
from sage.llm.hookspecs import CONTROL_PLANE_GROUP
from sage.llm.testing.control_plane import ScriptedBackend
from sage.llm.testing.fake_plugins import FakePlugins

GOOD = """
EVENTS = []

class Exporter:
    def on_engine_started(self, manager, engine_id, info):
        EVENTS.append(("started", engine_id))

    def on_request_finished(self, manager, engine_id, completion, outcome):
        EVENTS.append((outcome, completion.text))

exporter = Exporter()
"""

MISMATCH = """
class Exporter:
    def on_engine_started(self, manager, engine):  # not the hook's arguments
        pass

exporter = Exporter()
"""


def _install(plugins: FakePlugins, dist: str, module: str, source: str, target: str) -> None:
    plugins.add(
        dist, {}, source, module=module, groups={CONTROL_PLANE_GROUP: {dist: f"{module}:{target}"}}
    )


@pytest.fixture
def installed(plugins: FakePlugins) -> FakePlugins:
    """One good plugin beside one of each way an installed plugin can be broken."""
    _install(plugins, "cp-good", "cp_good", GOOD, "exporter")
    _install(plugins, "cp-import-error", "cp_import_error", "import not_installed_dep\n", "x")
    _install(plugins, "cp-mismatch", "cp_mismatch", MISMATCH, "exporter")
    _install(plugins, "cp-exits", "cp_exits", "import sys\nsys.exit(3)\n", "x")
    plugins.add(
        "cp-malformed", {}, groups={CONTROL_PLANE_GROUP: {"cp-malformed": "not a reference!"}}
    )
    plugins.add(
        "cp-old",
        {},
        "x = 1\n",
        module="cp_old",
        requires=("sage-llm-core<0.0.1",),
        groups={CONTROL_PLANE_GROUP: {"cp-old": "cp_old:x"}},
    )
    return plugins


def _events() -> list[tuple[str, str]]:
    import cp_good  # type: ignore[import-not-found]

    events: list[tuple[str, str]] = cp_good.EVENTS
    return events


def test_broken_installed_plugins_are_reported_and_skipped(
    installed: FakePlugins, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "sage.llm.control_plane")
    cp = ControlPlaneManager("never")
    try:
        eid = cp.start_engine("m", engine=ScriptedBackend)
        cp.generate(engine_id=eid, prompt="ab")
        assert _events() == [("started", eid), ("ok", "ba")]  # the good one still works
        plugins = cp.status()["plugins"]
    finally:
        cp.shutdown()
    assert [p["distribution"] for p in plugins["loaded"]] == ["cp-good"]
    assert plugins["loaded"][0]["hooks"] == ["on_engine_started", "on_request_finished"]
    failed = {p["distribution"]: p["error"] for p in plugins["failed"]}
    assert sorted(failed) == [
        "cp-exits",
        "cp-import-error",
        "cp-malformed",
        "cp-mismatch",
        "cp-old",
    ]
    assert "ModuleNotFoundError" in failed["cp-import-error"]
    assert "on_engine_started" in failed["cp-mismatch"]
    assert "sys.exit()" in failed["cp-exits"]
    assert "not 'module:Class'" in failed["cp-malformed"]
    assert "needs sage-llm-core<0.0.1" in failed["cp-old"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for dist in failed:
        (line,) = [w for w in warnings if f"from {dist} 1.0.0 was not loaded" in w]
        assert f"pip uninstall {dist}" in line


def test_strict_mode_makes_a_broken_installed_plugin_an_error(
    installed: FakePlugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(discovery.STRICT_ENV, "1")
    with pytest.raises(ControlPlanePluginError, match=r"'cp-exits' from cp-exits 1\.0\.0"):
        ControlPlaneManager("never")


def test_without_entry_points_nothing_installed_loads(installed: FakePlugins) -> None:
    cp = ControlPlaneManager("never", load_entry_points=False)
    try:
        assert cp.status()["plugins"] == {"loaded": [], "failed": []}
    finally:
        cp.shutdown()


def test_a_plugin_passed_explicitly_and_also_installed_is_called_once(
    installed: FakePlugins,
) -> None:
    import cp_good

    cp = ControlPlaneManager("never", plugins=[cp_good.exporter])
    try:
        eid = cp.start_engine("m", engine=ScriptedBackend)
        assert _events() == [("started", eid)]
    finally:
        cp.shutdown()


class Raising:
    @hookimpl(tryfirst=True)  # called before the recorder
    def on_request_finished(
        self, manager: Any, engine_id: str, completion: Any, outcome: str
    ) -> None:
        raise RuntimeError("exporter down")

    def register_scheduling_policies(self, register: Any) -> None:
        register("half-registered", object)
        raise RuntimeError("no policies today")


class Recorder:
    def __init__(self) -> None:
        self.outcomes: list[str] = []

    def on_request_finished(
        self, manager: Any, engine_id: str, completion: Any, outcome: str
    ) -> None:
        self.outcomes.append(outcome)

    def register_scheduling_policies(self, register: Any) -> None:
        from sage.llm.control_plane.policies import NeverPolicy

        register("mine", NeverPolicy)


def test_a_raising_observer_does_not_stop_the_others_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "sage.llm.control_plane")
    recorder = Recorder()
    cp = ControlPlaneManager("never", plugins=[recorder, Raising()], load_entry_points=False)
    try:
        eid = cp.start_engine("m", engine=ScriptedBackend)
        cp.generate(engine_id=eid, prompt="ab")
        cp.generate(engine_id=eid, prompt="cd")
        assert recorder.outcomes == ["ok", "ok"]
        loaded = {p["name"]: p for p in cp.status()["plugins"]["loaded"]}
    finally:
        cp.shutdown()
    assert loaded["Raising"]["hook_errors"] == {
        "on_request_finished": 2,
        "register_scheduling_policies": 1,
    }
    assert loaded["Recorder"]["hook_errors"] == {}
    logged = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage().split(";")[0] for r in logged] == [
        "control-plane plugin 'Raising' failed in register_scheduling_policies",
        "control-plane plugin 'Raising' failed in on_request_finished",
    ]
    assert all(r.exc_info for r in logged)  # with the plugin's traceback


def test_a_plugin_that_raises_while_registering_policies_adds_none() -> None:
    cp = ControlPlaneManager("mine", plugins=[Raising(), Recorder()], load_entry_points=False)
    try:
        assert cp.policy.describe()["name"] == "never"  # the Recorder's policy
        with pytest.raises(UnknownPolicyError, match="unknown scheduling policy 'half-registered'"):
            ControlPlaneManager("half-registered", plugins=[Raising()], load_entry_points=False)
    finally:
        cp.shutdown()


def test_a_hook_wrapper_is_refused_naming_the_plugin_and_the_hook() -> None:
    class Wrapper:
        @hookimpl(wrapper=True)
        def on_engine_started(self, manager: Any, engine_id: str, info: Any) -> Any:
            return (yield)

    with pytest.raises(ControlPlanePluginError, match="'Wrapper': on_engine_started is a hook"):
        ControlPlaneManager(plugins=[Wrapper()], load_entry_points=False)
