"""The busy-machine note: other processes' CPU time is seen and flagged."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from sage.llm.bench.host_load import BUSY_SHARE, HostLoad, HostLoadMeter, _machine_busy_s

needs_proc_stat = pytest.mark.skipif(
    _machine_busy_s() is None, reason="no /proc/stat on this OS (the load average stands in)"
)
BURN = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass\n"


@needs_proc_stat
def test_other_processes_burning_every_core_make_the_run_busy() -> None:
    import os

    cores = os.cpu_count() or 1
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(cores)]
    try:
        time.sleep(0.3)  # let them start
        with HostLoadMeter() as meter:
            time.sleep(1.5)
    finally:
        for p in burners:
            p.kill()
        for p in burners:
            p.wait()  # reaped only after the meter stopped: not counted as ours
    load = meter.result
    assert load is not None
    assert load.other_share is not None
    assert load.other_share > BUSY_SHARE
    assert load.busy
    note = load.note()
    assert note is not None
    assert "busy machine" in note
    assert f"{cores} cores" in note


def test_note_only_when_busy() -> None:
    assert HostLoad(0.1, 0.2, 4).note() is None
    assert HostLoad(0.6, 3.0, 4).busy
    # Without /proc/stat the load average decides.
    assert HostLoad(None, 9.0, 4).busy
    assert not HostLoad(None, 1.0, 4).busy
    assert not HostLoad(None, None, 4).busy
