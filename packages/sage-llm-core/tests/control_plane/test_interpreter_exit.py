"""A script that exits without ``cp.shutdown()`` while a request runs exits with its own code.

Engine threads are daemons; one still inside torch while Python finalizes used to abort the
process (exit 134). The manager's exit hook stops the engines first.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from sage.llm.control_plane import ControlPlaneManager

    cp = ControlPlaneManager("never", load_entry_points=False)
    cp.start_engine(sys.argv[1], None, served_model_name="tiny")
    handle = cp.submit(prompt="hello hello", max_tokens=1000)
    while handle.first_text_at is None:  # generating now
        time.sleep(0.001)
    print("leaving with a request running", flush=True)
    """
)


def test_exit_without_shutdown_while_a_request_runs_exits_0(tiny_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tiny_dir)], capture_output=True, text=True, timeout=120
    )
    assert "leaving with a request running" in done.stdout, done.stderr
    assert done.returncode == 0, done.stderr  # was 134: "terminate called without an active..."
