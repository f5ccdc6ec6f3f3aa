"""The load gate on synthetic step measurements: bands, exploration, choice, drift."""

from __future__ import annotations

import pytest

from sage_llm_strategy_dynamic.load_gate import MIN_STEPS, PROBE_EVERY, LoadGate, band


def run(gate: LoadGate, batch: int, steps: int, speculative_rate: float, plain_rate: float) -> int:
    """``steps`` steps at ``batch``, each mode committing tokens at its rate; returns how many
    speculated."""
    on = 0
    for _ in range(steps):
        speculate = gate.decide(batch)
        on += speculate
        rate = speculative_rate if speculate else plain_rate
        gate.observe(batch, round(rate * 0.1), 0.1, speculate)
    return on


def test_bands_double() -> None:
    assert [band(b) for b in (1, 2, 3, 4, 5, 8, 9, 16, 17)] == [0, 1, 2, 2, 3, 3, 4, 4, 5]
    with pytest.raises(ValueError, match="batch size"):
        band(0)


def test_first_steps_measure_both_modes_without_dividing_by_zero() -> None:
    gate = LoadGate()
    assert gate.rates() == {}
    choices = []
    for _ in range(2 * MIN_STEPS):
        choices.append(gate.decide(4))
        gate.observe(4, 0, 0.1, choices[-1])  # no tokens at all: rates of 0, no error
    assert choices == [True, False] * MIN_STEPS  # both modes measured, alternately
    assert gate.rates() == {2: (0.0, 0.0)}
    gate.observe(4, 3, 0.0, True)  # a step of no measurable time teaches nothing
    assert gate.bands[2].speculative.steps == MIN_STEPS


def test_steps_without_drafts_measure_plain_decoding_for_free() -> None:
    """Where speculation wins, the plain rate comes from the steps that had no draft to verify
    (no n-gram match): the gate then never needs to force a plain step."""
    gate = LoadGate()
    for i in range(20 * PROBE_EVERY):
        speculate = gate.decide(1)
        drafted = speculate and i % 2 == 0  # every other step finds no match
        gate.observe(1, 4 if drafted else 1, 0.1 if not drafted else 0.12, drafted)
    assert gate.steps[False] <= MIN_STEPS
    speculative, plain = gate.rates()[0]
    assert speculative > plain > 0


def test_the_faster_mode_wins_in_each_band_with_bounded_probing() -> None:
    gate = LoadGate()
    steps = 20 * PROBE_EVERY
    on_small = run(gate, 2, steps, speculative_rate=300, plain_rate=200)
    on_large = run(gate, 12, steps, speculative_rate=900, plain_rate=1200)
    assert on_small >= steps - MIN_STEPS - steps // PROBE_EVERY
    assert on_large <= MIN_STEPS + steps // PROBE_EVERY
    assert set(gate.rates()) == {1, 4}


def test_a_change_in_the_traffic_is_followed_within_a_bounded_number_of_steps() -> None:
    gate = LoadGate()
    run(gate, 8, 10 * PROBE_EVERY, speculative_rate=400, plain_rate=300)
    # acceptance collapses: speculation now loses a third; the gate follows once the new
    # steps outweigh the remembered ones (MEMORY's half-life, 14 steps), then only probes
    on = run(gate, 8, 2 * PROBE_EVERY, speculative_rate=200, plain_rate=300)
    assert on <= 16
    on = run(gate, 8, 4 * PROBE_EVERY, speculative_rate=200, plain_rate=300)
    assert on <= 4
    # and back, at the first probes of speculation
    on = run(gate, 8, 4 * PROBE_EVERY, speculative_rate=400, plain_rate=300)
    assert on >= 4 * PROBE_EVERY - 2 * PROBE_EVERY - 4
