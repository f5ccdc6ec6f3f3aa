"""Issue 20: ``sage-llm serve`` starts beside a broken installed control-plane plugin.

The plugins are real wheels unpacked as pip would; the server process finds them on its
``PYTHONPATH`` through the ``sage.llm.control_plane`` entry-point group, as it would find
installed ones.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from serve_helpers import wait_until_healthy

from sage.llm.hookspecs import CONTROL_PLANE_GROUP
from sage.llm.testing.fake_plugins import FakePlugins

GOOD = """
class Exporter:
    def on_engine_started(self, manager, engine_id, info):
        pass

exporter = Exporter()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_starts_and_reports_a_broken_control_plane_plugin(
    tiny_dir: Path, plugins: FakePlugins
) -> None:
    plugins.add(
        "serve-good-exporter",
        {},
        GOOD,
        module="serve_good_exporter",
        groups={CONTROL_PLANE_GROUP: {"good": "serve_good_exporter:exporter"}},
    )
    plugins.add(
        "serve-broken-exporter",
        {},
        "import a_dependency_that_is_not_installed\n",
        module="serve_broken_exporter",
        groups={CONTROL_PLANE_GROUP: {"broken": "serve_broken_exporter:Exporter"}},
    )
    port = free_port()
    command = [
        *(sys.executable, "-m", "sage.llm", "serve", "--model", str(tiny_dir)),
        *("--strategy", "none", "--port", str(port), "--status-interval", "0"),
    ]
    path = os.pathsep.join([*plugins.search_path, os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path.rstrip(os.pathsep)}
    env.pop("SAGE_LLM_STRICT_PLUGINS", None)
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(proc, url)
        plugins_status = httpx.get(url + "/status").json()["plugins"]
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    loaded = [p["distribution"] for p in plugins_status["loaded"]]
    assert loaded == ["serve-good-exporter"]
    (failed,) = plugins_status["failed"]
    assert failed["name"] == "broken"
    assert failed["distribution"] == "serve-broken-exporter"
    assert "ModuleNotFoundError" in failed["error"]
    assert "control-plane plugin 'broken' from serve-broken-exporter 1.0.0 was not loaded" in (
        stderr
    )
    assert "pip uninstall serve-broken-exporter" in stderr
