"""The controller on synthetic acceptance sequences and cost profiles (no model, no torch)."""

from __future__ import annotations

import math

import pytest

from sage_llm_strategy_dynamic.controller import (
    PROBE_LAST,
    AcceptanceEstimates,
    LookaheadController,
    StepCosts,
    expected_tokens,
)

# A CPU-like verify profile: one token 1.0, two 1.38, then nearly flat
# (docs/notes/cpu-weight-layout.md).
CPU = [1.0, 1.38, 1.48, 1.50, 1.53, 1.55, 1.65, 1.63, 1.7, 1.72, 1.75]


def drive(c: LookaheadController, accept: float, steps: int, limit: int = 64) -> list[int]:
    """Run ``steps`` steps where each proposed token is accepted iff position < accept*k."""
    chosen = []
    for _ in range(steps):
        k = c.choose(limit)
        chosen.append(k)
        if k:
            c.observe(k, k if accept >= 1.0 else int(accept * k))
    return chosen


def test_expected_tokens() -> None:
    assert expected_tokens([1.0] * 4, 4) == 5
    assert expected_tokens([0.5, 0.5], 2) == pytest.approx(1.75)
    assert expected_tokens([0.9], 0) == 1


def test_no_nan_or_zero_division_at_start() -> None:
    c = LookaheadController(0, 8)
    scores = c.scores(8)
    assert all(math.isfinite(s) and s > 0 for s in scores.values())
    assert 0 <= c.choose(8) <= 8
    assert c.choose(0) == 0  # the engine allows nothing this step
    c.costs.observe_pass(1, 0.0)  # zero and absurd timings are ignored
    c.costs.observe_pass(3, float("nan"))
    assert all(math.isfinite(s) for s in c.scores(8).values())


@pytest.mark.parametrize("profile", [None, CPU])
def test_all_accepted_rises_to_max(profile: list[float] | None) -> None:
    c = LookaheadController(1, 10, profile=profile)
    c.choose(10)
    c.observe(1, 0)  # start from a bad first impression
    chosen = drive(c, 1.0, 30)
    assert chosen[-1] == 10


def test_nothing_accepted_falls_to_min_or_off() -> None:
    seed = LookaheadController(3, 10, profile=CPU)
    assert drive(seed, 0.0, 30)[-1] == 3  # the seed's min_tokens=3: never fewer while on
    off = LookaheadController(0, 10, profile=CPU)
    chosen = drive(off, 0.0, 30)
    assert chosen[-1] == 0
    assert chosen.count(0) > 20


def test_switched_off_it_probes_at_bounded_intervals() -> None:
    c = LookaheadController(0, 6, profile=CPU)
    chosen = drive(c, 0.0, 400)
    zeros_in_a_row = max(len(run) for run in "".join("x" if k else "0" for k in chosen).split("x"))
    assert zeros_in_a_row <= PROBE_LAST
    assert sum(1 for k in chosen[100:] if k) <= 300 // PROBE_LAST + 2  # probes grow sparse
    # Once proposals are good again a probe notices and speculation comes back.
    back = drive(c, 1.0, PROBE_LAST + 10)
    assert back[-1] == 6


def test_regime_change_is_followed_within_a_few_steps() -> None:
    c = LookaheadController(0, 8, profile=CPU)
    drive(c, 1.0, 40)
    after = drive(c, 0.0, 24)
    assert after[-8:].count(0) >= 6, after  # copying stopped: off (but probing) within 16 steps
    c1 = LookaheadController(1, 8, profile=CPU)
    drive(c1, 1.0, 40)
    assert drive(c1, 0.0, 24)[-1] == 1
    c2 = LookaheadController(1, 8, profile=CPU)
    drive(c2, 0.0, 40)
    again = drive(c2, 1.0, 12)
    assert again[-1] == 8, again


def test_gpu_like_flat_costs_speculate_deeper_than_cpu_costs() -> None:
    """Same acceptance, different measured costs: k follows E(k)/C(k)."""
    flat = LookaheadController(0, 10, profile=[1.0 + 0.01 * n for n in range(11)])
    steep = LookaheadController(0, 10, profile=[1.0 + 0.5 * n for n in range(11)])
    for c in (flat, steep):
        for _ in range(20):
            c.observe(10, 3)  # 3 of 10 accepted, every time
    assert flat.choose(10) > steep.choose(10)


def test_acceptance_counts_only_positions_the_target_judged() -> None:
    a = AcceptanceEstimates(6)
    a.observe(6, 2)  # positions 0, 1 accepted; 2 rejected; 3..5 never judged
    assert a.trials[:3] == [1.0, 1.0, 1.0]
    assert a.trials[3:] == [0.0, 0.0, 0.0]
    assert a.hits[:3] == [1.0, 1.0, 0.0]


def test_cap_lowers_k_from_outside() -> None:
    c = LookaheadController(2, 10, profile=CPU)
    drive(c, 1.0, 20)
    c.set_cap(4)
    assert c.choose(10) == 4
    c.set_cap(0)
    assert c.choose(10) == 0
    c.set_cap(None)
    assert c.choose(10) == 10
    with pytest.raises(ValueError, match="cap must be"):
        c.set_cap(-1)


def test_min_tokens_respected_unless_less_is_allowed() -> None:
    c = LookaheadController(3, 10, profile=CPU)
    drive(c, 0.0, 10)
    assert c.choose(10) == 3
    assert c.choose(2) == 2  # the engine or the proposal allows only 2


@pytest.mark.parametrize(("lo", "hi"), [(-1, 4), (5, 4), (0, 0)])
def test_parameters_are_validated(lo: int, hi: int) -> None:
    with pytest.raises(ValueError, match="min_tokens"):
        LookaheadController(lo, hi)


def test_costs_learn_from_timings_and_ignore_a_stall() -> None:
    costs = StepCosts(5, profile=[1.0, 2.0, 2.0, 2.0, 2.0])
    costs.observe_pass(1, 0.1)
    assert costs.pass_cost(3) == pytest.approx(0.2)  # unobserved: profile x observed scale
    costs.observe_pass(3, 0.3)
    costs.observe_pass(3, 100.0)  # another process took the CPU
    assert costs.pass_cost(3) < 0.5
    with pytest.raises(ValueError, match="positive finite"):
        StepCosts(3, profile=[1.0, -1.0])


def test_a_new_request_keeps_what_copies_taught_but_relearns_fresh_proposals() -> None:
    """Whether a copy in progress goes on is a property of the proposer and the text kind:
    it carries over whole. Fresh proposals depend on the request: a new one's own verdicts
    must outweigh its predecessor's within two steps."""
    c = LookaheadController(0, 10, profile=CPU)
    for _ in range(10):
        c.observe(10, 10, state=True)  # copies went on to the end
        c.observe(10, 0, state=False)  # fresh proposals all failed
    c.start_request()
    assert c.states[True].estimates()[9] > 0.9
    assert c.states[False].estimates()[0] < 0.1
    c.observe(10, 10, state=False)
    c.observe(10, 10, state=False)
    assert c.states[False].estimates()[0] > 0.5


def _probes(loss: float | None, requests: int = 1, steps: int = 400) -> int:
    """Probes a controller makes over ``requests`` requests of ``steps // requests`` steps when
    nothing is ever accepted and each probe loses ``loss`` plain steps' time."""
    c = LookaheadController(0, 6, profile=CPU)
    for n in range(1, 8):
        c.costs.observe_pass(n, CPU[n - 1])
    count = 0
    for _ in range(requests):
        c.start_request()
        for _ in range(steps // requests):
            k = c.choose(6)
            if k:
                count += 1
                if loss is not None:  # a probe's whole time, as measured
                    c.observe_probe(c.costs.step_cost(0) * (1 + loss), k, 0)
                c.observe(k, 0)
    return count


def test_costly_probes_are_spaced_by_what_they_lose() -> None:
    """A model draft that must first read the whole prompt makes a probe lose many steps:
    probes then come at most once per 1 / PROBE_BUDGET times their loss in plain steps."""
    from sage_llm_strategy_dynamic.controller import PROBE_BUDGET

    free, costly = _probes(0.0), _probes(8.0)  # a draft that costs nothing, one that costs 8
    assert costly < free
    assert costly <= 400 * PROBE_BUDGET / 8.0 + 2  # about PROBE_BUDGET of the time at most


def test_the_probe_schedule_carries_over_between_requests() -> None:
    """Whether a draft pays is a property of the pair and the traffic: twenty short requests
    must not probe more than one long request of the same total length (each restarting the
    schedule would probe in every request)."""
    long_run, short_runs = _probes(1.0), _probes(1.0, requests=20)
    assert short_runs <= long_run + 1
    assert short_runs < 20


def test_a_model_draft_needs_a_clear_gain_to_speculate() -> None:
    """Near break-even a lookup speculates (its mistakes are cheap); a model draft, whose step
    costs are under-stated, stays plain unless the gain clears MODEL_DRAFT_MARGIN."""
    from sage_llm_strategy_dynamic.controller import MODEL_DRAFT_MARGIN

    def controller(margin: float) -> LookaheadController:
        c = LookaheadController(0, 1, profile=[1.0, 1.5])
        c.costs.observe_pass(1, 1.0)
        c.costs.observe_pass(2, 1.5)
        c.margin = margin
        for accepted in [1, 1, 0, 1, 1, 0, 1, 0] * 3:  # about 60% accepted
            c.observe(1, accepted)
        return c

    lookup, draft = controller(0.0), controller(MODEL_DRAFT_MARGIN)
    scores = lookup.scores(1)
    assert 1.0 < scores[1] / scores[0] < 1.0 + MODEL_DRAFT_MARGIN  # marginal gain
    assert lookup.choose(1, learns_when_off=True) == 1
    assert draft.choose(1, learns_when_off=True) == 0


def test_the_draft_proposer_gets_the_margin_and_a_lookup_does_not() -> None:
    from sage_llm_strategy_dynamic.controller import MODEL_DRAFT_MARGIN
    from sage_llm_strategy_dynamic.proposer import DynamicProposer

    class Inner:
        def start(self, prompt_ids: object) -> None: ...

    assert DynamicProposer(Inner(), LookaheadController(0, 4)).controller.margin == (
        MODEL_DRAFT_MARGIN
    )
    assert DynamicProposer(Inner(), LookaheadController(0, 4), cheap=True).controller.margin == 0


# -- a model draft: probe depth, priced switch-on, expected probe loss ----------------------

# The 1.5B target with the 0.5B draft on a 2-core CPU (docs/benchmarks.md, draft traces): a
# verify pass of 2+ tokens costs about 1.9 plain steps, a drafted token 0.4.
STEEP = [1.0, 1.86, 1.90, 1.91, 1.93, 1.95, 1.97, 2.0, 2.0, 2.0, 2.0]


def model_draft(max_tokens: int = 10, profile: list[float] = STEEP) -> LookaheadController:
    from sage_llm_strategy_dynamic.controller import MODEL_DRAFT_MARGIN

    c = LookaheadController(0, max_tokens, profile=profile)
    for n in range(1, max_tokens + 2):
        c.costs.observe_pass(n, profile[n - 1])
    c.costs.observe_draft(1, 0.4)
    c.margin = MODEL_DRAFT_MARGIN
    return c


def test_a_probe_drafts_the_depth_that_pays_soonest() -> None:
    """With a steep first verify step one drafted token never pays, so a one-token probe (the
    depth pessimistic estimates prefer) could never show that a deep draft does."""
    c = model_draft()
    depth = c.probe_depth(range(1, 11))
    assert depth is not None
    assert 3 <= depth <= 8
    assert c.scores(10)[1] == max(v for k, v in c.scores(10).items() if k > 0)  # 1 looks best
    c.costs.observe_draft(1, 100.0)  # a draft far slower than the target cannot pay at all
    for _ in range(30):
        c.costs.observe_draft(1, 10.0)
    assert c.probe_depth(range(1, 11)) is None
    assert all(c.choose(10) == 0 for _ in range(200)), "no probe when nothing could pay"


def test_expected_probe_loss_is_a_line_through_measured_losses() -> None:
    c = model_draft()
    assert c.expected_probe_loss(50) is None  # nothing measured: the first probe is free
    plain = c.costs.step_cost(0)
    c.observe_probe(0.4 + plain, 5, 0, catch_up=10)  # lost 0.4 s, reading 10 tokens
    assert c.expected_probe_loss(10) == pytest.approx(0.4)
    assert c.expected_probe_loss(100) == pytest.approx(0.4)  # one read: no slope yet
    c.observe_probe(0.6 + plain, 5, 0, catch_up=60)  # 0.2 s more for 50 more tokens
    assert c.expected_probe_loss(1060) == pytest.approx(0.6 + 0.004 * 1000, rel=1e-6)
    c.observe_probe(0.0, 5, 5, catch_up=10)  # a probe that gained pays the credit back
    assert c.probe_loss is not None
    assert c.probe_loss < 0.6


def test_switching_a_draft_on_waits_until_its_catching_up_is_paid_for() -> None:
    """The estimates say speculate, but the draft must first read what it missed: a short read
    is paid for at once, a long one (a long prompt's) only from enough credit."""
    c = model_draft()
    plain = c.costs.step_cost(0)
    c.observe_probe(0.3 + plain, 5, 0, catch_up=20)
    c.observe_probe(1.5 + plain, 5, 0, catch_up=320)  # 4 ms per token read
    c.probes.credit = 0.5  # what a quiet stretch of plain decoding earned
    for _ in range(20):
        c.observe(10, 10)  # the draft looks perfect now
    assert c.choose(10, catch_up=1000) == 0  # 4.2 s to read first: not yet
    k = c.choose(10, catch_up=8)
    assert k > 0
    assert c.probing
    c.observe(k, k)
    assert c.choose(10) > 0  # caught up: goes on speculating without asking again


def test_only_a_probe_that_paid_shortens_the_schedule() -> None:
    def after(seconds_lost: float) -> int:
        c = model_draft()
        c.probes.every = 32
        c.probes.probing = True
        c.observe_probe(seconds_lost + 3 * c.costs.step_cost(0), 5, 2, catch_up=4)
        c.observe(5, 2)
        return c.probes.every

    assert after(-0.1) == 4  # two tokens accepted and the probe gained: look again soon
    assert after(0.5) == 32  # two tokens accepted but it lost: the schedule stands


def test_a_model_draft_switches_on_when_it_turns_good() -> None:
    """A regime change for a model draft: nothing is accepted for 400 steps, then everything.
    Probes, priced as measured (the draft reads 13 ms of prompt per token, a failed probe
    loses about three plain steps), stay within the budget while the draft is bad, and find
    it once it is good; after that it speculates on its own, without probing."""
    from sage_llm_strategy_dynamic.controller import PROBE_BUDGET

    c = model_draft()
    plain = c.costs.step_cost(0)
    on_at, missed, bad_probes, failed_loss = None, 60, 0, []  # 60: the prompt
    for step in range(3000):
        good = step >= 400
        read_first = missed
        k = c.choose(10, catch_up=read_first)
        probe = c.probing
        missed = 0 if k else missed + 1
        if not k:
            continue
        accepted = k if good else 0
        if probe:  # what it took: reading what it missed, drafting, verifying
            seconds = c.costs.step_cost(k) + 0.013 * plain * read_first
            c.observe_probe(seconds, k, accepted, catch_up=read_first)
            if not good:
                bad_probes += 1
                failed_loss.append(seconds - plain)
        elif good and on_at is None:
            on_at = step
        c.observe(k, accepted)
    assert failed_loss
    assert min(failed_loss) > 2.5 * plain
    # the first probe is free (nothing measured yet), the rest come out of the budget
    assert 1 < bad_probes <= 1 + 400 * PROBE_BUDGET * plain / min(failed_loss) + 1
    assert on_at is not None
    assert c.choose(10) > 0
    assert not c.probing


def test_an_unmeasured_pass_size_lies_between_measured_ones() -> None:
    costs = StepCosts(11)
    costs.observe_pass(1, 1.0)
    costs.observe_pass(11, 2.0)
    assert costs.pass_cost(6) == pytest.approx(1.5)  # not the 1-token pass's 1.0
    costs.observe_pass(2, 1.8)
    assert costs.pass_cost(6) == pytest.approx(1.8 + 0.2 * 4 / 9)
    assert StepCosts(11).pass_cost(3) == 1.0  # nothing measured: all alike


def test_a_costly_proposer_times_a_plain_step_first() -> None:
    """Nothing measured yet and acceptance looks perfect: a model draft still starts with one
    plain step (its time is what every depth is weighed against); a lookup does not."""
    draft, lookup = LookaheadController(0, 10), LookaheadController(0, 10)
    for c in (draft, lookup):
        for _ in range(5):
            c.observe(10, 10)
    assert lookup.choose(10, learns_when_off=True) > 0
    assert draft.choose(10, catch_up=30) == 0
    draft.costs.observe_pass(1, 0.3)
    assert draft.choose(10, catch_up=31) > 0  # measured: now it may switch on


# -- a model draft timed by the target's confidence ------------------------------------------


def listening(confidence: float, tokens: int = 8, read: float = 0.5) -> LookaheadController:
    """A model draft whose engine reported ``tokens`` values of ``confidence`` so far, with a
    read of 1 and of 100 missed tokens timed (``read`` seconds for 100)."""
    c = model_draft()
    c.costs.observe_read(1, 0.4)
    c.costs.observe_read(100, read)
    c.observe_confidence([confidence] * tokens)
    return c


def test_confidence_switches_a_draft_on_where_the_target_is_sure() -> None:
    assert listening(0.97).choose(10, catch_up=50) > 0
    assert listening(0.6).choose(10, catch_up=50) == 0


def test_confidence_keeps_the_draft_off_for_a_requests_first_tokens() -> None:
    from sage_llm_strategy_dynamic.controller import CONFIDENCE_MIN_TOKENS

    c = listening(0.99, tokens=CONFIDENCE_MIN_TOKENS - 1)
    assert c.choose(10, catch_up=50) == 0
    c.observe_confidence([0.99])
    assert c.choose(10, catch_up=50) > 0


def test_confidence_replaces_probes() -> None:
    """While the target is unsure the draft is never run, not even on the probe schedule
    that a controller without the signal follows."""
    blind = model_draft()
    blind.choose(10, catch_up=50)  # the first step: plain, to time it
    assert any(blind.choose(10, catch_up=50) > 0 for _ in range(300)), "it probes"
    c = listening(0.5)
    for _ in range(300):
        assert c.choose(10, catch_up=50) == 0
        c.observe_confidence([0.5])


def test_a_long_read_must_be_paid_back_within_the_request() -> None:
    """Reading a long prompt first pays only if the request goes on long enough: how long
    requests go on is learned from the ones before, and a request is never expected to go
    on for longer than it has run so far."""
    c = listening(0.97, read=4.0)  # 4 s for 100 tokens: reading is dear
    for _ in range(5):  # recent requests ended after 10 tokens
        c.start_request()
        c.observe_confidence([0.97] * 10)
    c.start_request()
    c.observe_confidence([0.97] * 8)
    assert c.expected_remaining(90) == pytest.approx(2.0)
    assert c.choose(90, catch_up=100) == 0
    for _ in range(8):  # now they run on for 96 tokens
        c.start_request()
        c.observe_confidence([0.97] * 96)
    c.start_request()
    c.observe_confidence([0.97] * 8)
    assert c.expected_remaining(90) == pytest.approx(8.0)  # only 8 seen: 8 more at most
    assert c.choose(90, catch_up=100) == 0
    c.observe_confidence([0.97] * 32)
    assert c.expected_remaining(90) == pytest.approx(40.0)
    assert c.choose(90, catch_up=100) > 0


def test_a_draft_that_disagrees_where_the_target_is_sure_is_switched_off() -> None:
    """The calibration (tokens the draft's steps committed over those predicted) finds out a
    draft the confidence flatters, within a bounded number of drafting steps."""
    c = listening(0.97)
    drafted = 0
    for _ in range(50):
        k = c.choose(10, catch_up=0)
        if k == 0:
            break
        drafted += 1
        c.observe(k, 0)  # every first token rejected
        c.observe_confidence([0.97])
    assert 0 < drafted <= 5
    assert c.calibration < 0.6
    for _ in range(30):  # calibration recovers toward its prior request by request
        c.start_request()
    assert c.calibration > 0.9


def test_confidence_reports_are_sanitised() -> None:
    c = model_draft()
    assert not c.hears_confidence
    c.observe_confidence([float("nan"), 1.5, -0.1, 0.5, 1.0])
    assert c.hears_confidence
    assert (c.confidence.request.total, c.confidence.request.count) == (1.5, 2)
    c.start_request()
    assert not c.hears_confidence


def test_read_cost_is_a_line_through_timed_reads() -> None:
    costs = StepCosts(4)
    assert costs.read_cost(10) is None
    costs.observe_read(10, 0.2)
    assert costs.read_cost(100) == pytest.approx(2.0)  # one size: scaled, on the safe side
    costs.observe_read(110, 0.4)
    assert costs.read_cost(1010) == pytest.approx(0.2 + 0.002 * 1000)
    costs.observe_read(0, 1.0)  # ignored
    costs.observe_read(5, float("inf"))
    assert costs.read_cost(1010) == pytest.approx(0.2 + 0.002 * 1000)


def test_a_spread_of_confidences_is_trusted_less_than_a_steady_run() -> None:
    """Two requests with the same mean confidence: the one whose values scatter is predicted
    lower (by CONFIDENCE_CAUTION standard errors), and the gap closes as values come in."""
    from sage_llm_strategy_dynamic.controller import CONFIDENCE_CAUTION

    steady = listening(0.8, tokens=0)
    steady.observe_confidence([0.8] * 4)
    scattered = listening(0.8, tokens=0)
    scattered.observe_confidence([1.0, 0.6, 1.0, 0.6])
    assert steady.predicted_acceptance() == pytest.approx(0.8)
    first = scattered.predicted_acceptance()
    assert first == pytest.approx(0.8 - CONFIDENCE_CAUTION * 0.2 / 2)  # sd 0.2, 4 values
    scattered.observe_confidence([1.0, 0.6] * 8)
    later = scattered.predicted_acceptance()
    assert later is not None
    assert first is not None
    assert first < later < 0.8
    # On the costs of the 2-core VM (STEEP), the caution keeps the draft off after a few
    # sure-then-unsure tokens where their plain mean would have switched it on.
    hopeful = listening(0.9, tokens=0)
    hopeful.observe_confidence([1.0, 1.0, 1.0, 0.4])  # mean 0.85
    sure = listening(0.85, tokens=4)
    assert sure.choose(10, catch_up=50) > 0
    assert hopeful.choose(10, catch_up=50) == 0


def test_break_even_of_one_more_drafted_token_comes_from_measured_costs() -> None:
    """A drafted token's time plus one more verify position, over a plain step: the mean
    slope of the pass cost from 2 tokens up, so one noisy size does not move it."""
    c = model_draft()  # plain 1.0 s, a drafted token 0.4 s, STEEP passes
    slope = (STEEP[10] - STEEP[1]) / 9
    assert c.costs.draft_break_even() == pytest.approx(0.4 + slope)
    c.costs.observe_pass(7, 3.0)  # one slow 7-token pass
    assert c.costs.draft_break_even() == pytest.approx(0.4 + slope)
    cheap = LookaheadController(0, 10)
    for n in range(1, 12):
        cheap.costs.observe_pass(n, 1.0)  # a GPU: passes cost the same up to 11 tokens
    cheap.costs.observe_draft(1, 0.05)
    assert cheap.costs.draft_break_even() == pytest.approx(0.05)
    assert LookaheadController(0, 10).costs.draft_break_even() == 0.0  # nothing timed


def test_a_draft_that_stops_by_itself_is_run_as_deep_as_allowed() -> None:
    """With the draft's own cumulative stop (draft_stops), the target's confidence decides
    on or off and the stop decides the depth; without it the controller picks k."""
    picks = listening(0.88)
    k = picks.choose(10, catch_up=0)
    assert 0 < k < 10
    stops = listening(0.88)
    stops.draft_stops = True
    assert stops.choose(10, catch_up=0) == 10
    stops.set_cap(6)  # a cap from outside still holds
    assert stops.choose(10, catch_up=0) == 6
    unsure = listening(0.5)
    unsure.draft_stops = True
    assert unsure.choose(10, catch_up=0) == 0


def test_a_sure_stretch_after_an_unsure_start_switches_the_draft_on() -> None:
    """The request's mean lags a change of regime (prose, then a code block); its recent
    values (CONFIDENCE_RECENCY) catch it within a bounded number of tokens."""
    c = listening(0.6, tokens=40)
    assert c.choose(90, catch_up=40) == 0
    for sure in range(1, 30):
        c.observe_confidence([1.0])
        if c.choose(90, catch_up=40 + sure) > 0:
            break
    else:
        pytest.fail("30 sure tokens in a row did not switch the draft on")
    assert sure <= 15
    assert c.confidence.request.mean < 0.75  # the whole request's mean alone would still say off
