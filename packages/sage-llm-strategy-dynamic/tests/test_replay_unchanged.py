"""The controller's decisions on every committed trace file are those recorded in
``data/replay_expected.json``: a refactor that means to change nothing must change nothing.

Each trace is replayed exactly (``sage.llm.bench.replay``: the engine's loop with the model
replaced by the recorded output, time from the recorded cost table), so the steps, the tokens
proposed and the tokens accepted of every request follow from the controller's choices alone;
one changed decision anywhere changes them. A change that is meant to change behaviour
regenerates the file, and its diff shows which requests moved:

    python packages/sage-llm-strategy-dynamic/tests/test_replay_unchanged.py --update
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import pytest

TRACES = Path(__file__).resolve().parents[3] / "benchmarks" / "traces"
EXPECTED = Path(__file__).parent / "data" / "replay_expected.json"
NGRAM = ["dynamic-lookahead", "dynamic-lookahead:min_tokens=3"]  # over its own n-gram lookup
DRAFT = ["dynamic-lookahead", "dynamic-lookahead:target_confidence=false"]  # over the draft


def replay_all() -> dict[str, Any]:
    from sage.llm.bench.draft_traces import TracedDraft
    from sage.llm.bench.replay import run_policies, strategy_policy
    from sage.llm.bench.traces import TraceSet

    out: dict[str, Any] = {}
    for path in sorted(TRACES.glob("*.json")):
        traces = TraceSet.load(path)
        if any(t.draft_tokens for t in traces.traces):
            draft = functools.partial(TracedDraft, traces)
            policies = {s: strategy_policy(s, draft) for s in DRAFT}
        else:
            policies = {s: strategy_policy(s) for s in NGRAM}
        results = run_policies(traces, policies)
        out[path.name] = {
            name: {
                "requests": [
                    f"{t.question_id} {t.category}: {r.steps} steps, {r.proposed} proposed, "
                    f"{r.accepted} accepted"
                    for t, r in zip(traces.traces, runs, strict=True)
                ],
                "seconds": sum(r.seconds for r in runs),
            }
            for name, runs in results.items()
        }
    return out


def test_replay_of_the_committed_traces_is_unchanged() -> None:
    if not any(TRACES.glob("*.json")):
        pytest.skip(f"no committed traces at {TRACES} (tests run outside the repository)")
    expected = json.loads(EXPECTED.read_text())
    got = replay_all()
    assert sorted(got) == sorted(expected), "trace files were added or removed: --update"
    for name, policies in expected.items():
        for policy, want in policies.items():
            have = got[name][policy]
            moved = [a for a, b in zip(have["requests"], want["requests"], strict=True) if a != b]
            assert not moved, f"{policy} on {name} replays differently: {moved}"
            assert have["seconds"] == pytest.approx(want["seconds"], rel=1e-9), (name, policy)


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit(__doc__)
    EXPECTED.parent.mkdir(exist_ok=True)
    EXPECTED.write_text(json.dumps(replay_all(), indent=1) + "\n")
    print(f"wrote {EXPECTED}")
