"""How busy the machine was while a figure was measured, by processes other than ours.

A speedup is a ratio of two timings taken one after the other; when something else on the
host (a CI job, a compiler, another benchmark) takes cores in between, the ratio moves with it:
the main job once printed 1.32x on one run and 2.22x on the next on the same machine. We cannot
make the host quiet, but we can say when it was not, so a reader knows which figures to rerun.

The measure is the CPU time the whole machine spent busy (``/proc/stat``) minus the CPU time of
this process and its children (``os.times``), over the wall time times the number of cores.
Where ``/proc/stat`` is missing (macOS, Windows) the one-minute load average stands in for it
(it counts our own threads too, so it reads high while we compute and is only a hint).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

BUSY_SHARE = 0.25
"""Share of the machine's cores other processes may take before a figure is flagged: a
quarter of the cores is about where paired timings on 2-4 core machines started to move by
more than their run-to-run spread."""

_PROC_STAT = Path("/proc/stat")


def _machine_busy_s() -> float | None:
    """Seconds of CPU time all cores spent busy since boot, or None where unknown."""
    try:
        first = _PROC_STAT.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if not first or first[0] != "cpu":
        return None
    ticks = [int(v) for v in first[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    busy = sum(ticks[:8]) - idle  # user nice system idle iowait irq softirq steal
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return busy / hz


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass(frozen=True)
class HostLoad:
    """What other processes took of the machine during a measurement."""

    other_share: float | None
    """Mean share of all cores used by other processes (0..1), or None where unknown."""
    load_average: float | None
    """The one-minute load average at the end (where the OS has one)."""
    cores: int

    @property
    def busy(self) -> bool:
        if self.other_share is not None:
            return self.other_share > BUSY_SHARE
        return self.load_average is not None and self.load_average > self.cores * (1 + BUSY_SHARE)

    def note(self) -> str | None:
        """A sentence for the reader when the machine was busy, else None."""
        if not self.busy:
            return None
        if self.other_share is not None:
            taken = f"other processes used {self.other_share:.0%} of its {self.cores} cores"
        else:
            taken = f"load average {self.load_average:.1f} on {self.cores} cores"
        return (
            f"measured on a busy machine ({taken}): timings and speedups may be off; "
            "rerun when it is quiet"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "other_share": self.other_share,
            "load_average": self.load_average,
            "cores": self.cores,
            "busy": self.busy,
        }


class HostLoadMeter:
    """``with HostLoadMeter() as meter: ...; meter.result`` -- the load while the block ran."""

    def __init__(self) -> None:
        self.result: HostLoad | None = None
        self._start: tuple[float, float | None, float] = (0.0, None, 0.0)

    def __enter__(self) -> HostLoadMeter:
        return self.start()

    def start(self) -> HostLoadMeter:
        self._start = (time.monotonic(), _machine_busy_s(), _own_cpu_s())
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.result = self.stop()

    def stop(self) -> HostLoad:
        wall0, busy0, own0 = self._start
        wall = time.monotonic() - wall0
        cores = os.cpu_count() or 1
        busy1 = _machine_busy_s()
        share = None
        if busy0 is not None and busy1 is not None and wall > 0:
            other = (busy1 - busy0) - (_own_cpu_s() - own0)
            share = min(1.0, max(0.0, other / (wall * cores)))
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = None
        return HostLoad(share, load, cores)
