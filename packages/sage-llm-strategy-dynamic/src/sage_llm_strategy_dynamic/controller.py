"""How many tokens to propose next: the expected-gain controller of dynamic-lookahead.

Pure Python (no torch), so it is cheap to test on synthetic acceptance sequences and to replay
on recorded traces. Each step it picks the ``k`` that maximises expected committed tokens per
second (Leviathan et al. 2023, section 3.4):

* ``a_j``: the probability that proposed position ``j`` is accepted given that positions
  ``1..j-1`` were, estimated per position from the positions that were actually checked against
  the target (a position after the first rejection tells nothing and is not counted);
* ``E(k) = 1 + sum_{i<=k} prod_{j<=i} a_j``: expected tokens one step commits;
* ``C(k)``: the step's cost in seconds, measured (:class:`StepCosts`), never assumed;
* ``k* = argmax E(k) / C(k)`` over ``{0 if min_tokens == 0} U [max(1, min_tokens), cap]``.

Every constant below is named, with the reason for its value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

PRIOR_ACCEPTANCE: Final = 0.3
"""``a_1`` before anything is observed (later requests start from the acceptance of the ones
before). Cautious: on the replay of recorded traces 0.3 and below beat 0.5 by 1% overall (2% on
translation), because a cheap proposer's shadow learning (see proposer.py) corrects a low prior
within a step or two while a high one pays for rejected passes. Deeper positions borrow the
estimate of the position before them (a copy that started tends to go on), so an unobserved
depth is never assumed worse or better than the last depth that was observed."""

PRIOR_WEIGHT: Final = 0.25
"""How many observations the prior is worth: a quarter, so the first real verdict dominates and
an estimate can fall to ~2% (not to the 8% floor a full observation's weight would keep with
only about five remembered observations, see MEMORY): at 8% a 9-token pass still looked worth
it after thirty rejections in a row."""

MEMORY: Final = 0.8
"""Each new observation of a position discounts the older ones by this factor: an estimate
rests on about ``1 / (1 - 0.8) = 5`` recent observations, so a regime change (the output stops
copying the prompt) is followed within a handful of steps. Chosen on the replay of recorded
traces (docs/benchmarks.md), where 0.7-0.9 were within 1% of each other."""

STALE_MEMORY: Final = 0.95
"""Positions after the first rejection were not judged this step; what is known about them
fades by this factor per step instead (about 20 steps), toward the estimate of the position
before them, so a depth that stopped being reached does not keep its old, good estimate."""

CARRY_OVER_COPY: Final = 1.0
"""How much of what was learned about continuing a copy in progress (the ``True`` state) the
next request starts with. All of it: whether a copy that has matched so far goes on is a
property of the proposer and the kind of text, not of one request, and relearning it in every
request cost summarization 3.5% on the replay of recorded traces (0.965 -> 0.985 of fixed k=10
with a quiet machine's costs, docs/benchmarks.md)."""

CARRY_OVER_FRESH: Final = 0.3
"""The same for fresh proposals (the ``False`` state), which depend more on the request: keep
a third, so a new request starts from its predecessors' depths but its own verdicts dominate
within a couple of steps. On the replay 0.3 was best of 0 / 0.3 / 1.0 on the worst category
(0 lost summarization, 1.0 lost rag by 2-3%); the first position's rate is always carried over,
as the prior."""

COST_SMOOTHING: Final = 0.2
"""Weight of a new step-time sample in the running mean of its pass size (about 5 samples)."""

OUTLIER_FACTOR: Final = 3.0
"""A step-time sample above 3x the current estimate (another process took the CPU) is clipped
to 3x, so one stall cannot switch speculation off for a long time."""

HYSTERESIS: Final = 0.02
"""Keep the previous ``k`` unless another one is expected to be at least 2% faster: estimates
move a little every step and flapping between near-equal depths only adds noise."""

PROBE_BUDGET: Final = 0.02
"""Probing a model draft while speculation is off may cost at most 2% of the time spent
decoding plainly. What a probe costs is measured: its whole time (the draft catching up on the
tokens committed since it last ran, at a request's start the whole prompt; drafting;
verifying ``1 + k`` tokens) minus the plain steps its committed tokens would have taken. Every
plain step earns ``PROBE_BUDGET`` times its own time as credit, every probe spends what it
lost, and a probe waits (besides the step schedule below) until the credit covers what probes
have been losing (a running mean). The credit and the schedule carry over from one request to
the next: whether the draft pays is a property of the pair, the machine and the traffic, and
restarting the schedule in every request made short requests pay for several probes each (the
1.5B target with the 0.5B draft ran an 18-token translation at 0.84x of plain: four probes).
The first version (step schedule only, per request) ran that pair at 0.70x-0.93x of plain
decoding on categories where speculation does not pay; 0.05 of the catching-up time alone,
per request, still at 0.81x-0.88x (docs/benchmarks.md). 2% leaves room within the 3% a
category may lose to the better of plain decoding and the best fixed k."""

PROBE_CREDIT_LIMIT: Final = 2.0
"""The credit never exceeds what two probes lose on average (at least two plain steps, and at
least twice what the next probe is expected to lose, which grows with what the draft must
read first): a long stretch of plain decoding must not pay for a burst of probes later, and
a probe that is pricier than usual must still come within reach."""

LOSS_MEMORY: Final = 0.8
"""Each probe discounts what earlier probes taught about probe losses by this factor (about
five probes remembered), as :data:`MEMORY` does for acceptance."""

MODEL_DRAFT_MARGIN: Final = 0.05
"""A model draft speculates only when the chosen k is expected to be at least 5% faster than
plain decoding. Switching it on costs more than its steps show: the draft first reads every
token committed while it was off, and two models take turns on the same cores. With the 1.5B
target and the 0.5B draft on this CPU (a draft token costs about half a target token) fixed
k=5 ran at 1.00x-1.12x of plain on math_reasoning and at 0.6x-0.9x elsewhere, so the gain
worth having is a few percent and the margin must stay below it. 10% (the first value,
chosen while probes chained into speculation and catching up was counted as drafting) kept
the draft off on math_reasoning too. A lookup proposer, whose mistakes cost only the extra
verify positions, keeps a margin of 0."""

PROBE_FIRST: Final = 4
PROBE_LAST: Final = 64
"""With speculation off and no other way to learn (a proposer that is costly to run in the
shadow), probe once after 4 plain steps, then after 8, 16, ... at most every 64 steps (and no
more often than :data:`PROBE_BUDGET` allows): a bounded price for noticing that proposals
became good again. A promising probe raises the estimates (speculation resumes as soon as they
make it pay) and resets the interval to 4: one that paid for itself, or, when the caller does
not time probes, one that got a token accepted. It used to be followed by another
probe at once; with the 0.5B draft at 50-70% acceptance that chained into speculating nearly
every step where the cost model said not to (docs/benchmarks.md).

A probe asks "would speculating pay now?", so it drafts the depth at which speculation pays
at the lowest acceptance (:meth:`LookaheadController.probe_depth`, from the measured costs),
not the depth the current, pessimistic estimates prefer: those pick one token, and a one-token
probe cannot show that a deep draft pays. With the 1.5B target and the 0.5B draft on this CPU
(a 2-token verify pass costs 1.9 plain steps) one token never pays, and the one-token probes
never switched the draft on where fixed k=8 ran 1.15x of plain (math_reasoning, replay of the
draft traces in docs/benchmarks.md). Where even full acceptance cannot pay at any depth, no
probe is made.

Switching a model draft on is priced like a probe: the draft first reads every token it
missed (a whole prompt at a request's start), so a step that would switch it on waits for the
credit to cover what that is expected to lose. The expected loss is measured: a line through
the probes' losses against the tokens their draft had to read (:meth:`expected_probe_loss`). A
draft's reading a 1,000-token prompt (4.6 s for the 0.5B draft here, 14 plain steps) costs more
than 96 tokens of speculation can gain on this CPU, so such requests stay plain; a short
prompt's few tenths of a second are quickly paid for where the draft is good. A probe that
paid for itself (it gained) lets the next one come on any positive credit: the budget widens
exactly where the draft was just found good, and closes again at the first probe that loses."""


CONFIDENCE_MIN_TOKENS: Final = 4
"""When the engine reports the target's confidence (:meth:`LookaheadController.observe_confidence`),
a model draft stays off for a request's first 4 tokens, and is then switched on and off by the
confidence of the request so far (see :data:`CONFIDENCE_CAUTION`). On the draft traces,
requests sort by its mean: from about 0.88 over their first tokens most pay for a deep draft
(math, the copying parts of summarization and mt_bench), below it almost none does
(docs/benchmarks.md). 4, 8 and 16 were replayed: 4 lost least on math_reasoning, whose gain
is thin and spread over the request. With the caution, the recent estimate and the draft's
cumulative stop, 2 / 4 / 8 ran at 1.092x / 1.092x / 1.088x of plain overall on the 108
traces."""

CALIBRATION_PRIOR: Final = 20.0
"""The prediction is calibrated on the draft's own verdicts: tokens its steps committed over
the tokens predicted for them (from the confidence seen and the tokens drafted), discounted
sums that start at 20 and 20 (ratio 1, worth about three drafting steps). The ratio only ever
lowers the prediction. That the draft agrees where the target is sure held for the 0.5B draft
of the 1.5B target (35% agreement below a probability of 0.5, 85% at 0.8-0.9, 99% from 0.99);
a draft that disagrees where the target is sure is found out within a few steps: replayed with
half of that draft's tokens made wrong (``benchmarks/poor_draft.py``, docs/benchmarks.md),
dynamic-lookahead stays within 0.97x-1.00x of plain decoding per category on the 108 draft
traces. (With the controller of the first confidence version, before the cumulative stop, it
stayed within 0.93x-1.00x, and within 0.88x-1.00x with the calibration patched out; that
ablation is not a command of its own.)"""

CALIBRATION_MEMORY: Final = 0.9
"""Each drafting step discounts what earlier ones taught about the calibration by this factor
(about ten steps): it follows the kind of text, as :data:`MEMORY` does for acceptance."""

CALIBRATION_RECOVERY: Final = 0.9
"""At each new request the calibration moves 10% of the way back to its prior. It is learned
only while the draft runs, and the draft runs only where it is predicted to pay: without this,
a few bad requests could keep a good draft off for good."""

CONFIDENCE_CAUTION: Final = 0.5
"""The predicted acceptance is the request's mean target confidence less half its standard
error (the spread of the values seen over the square root of their count). A request's first
few values say little: a short translation whose first four tokens averaged 0.9 and then
turned unsure paid for a draft read and a rejected step it had no time to win back. Caution by
the spread holds back exactly those, while a run of sure tokens (a formula, a copied list),
whose spread is small, switches the draft on as early as before. Replayed on the 108 draft
traces the constants were chosen on (docs/benchmarks.md, mean over 16 orders): 0 / 0.25 /
0.5 / 1 standard errors ran the worst category at 0.965 (translation) / 0.976 / 0.975 /
0.974 of the better of plain decoding and its best fixed k, and overall at 1.099x / 1.095x /
1.092x / 1.083x of plain: more caution costs math_reasoning and mt_bench the early
switch-ons they gain by, less lets short unsure answers pay for a read."""

CONFIDENCE_RECENCY: Final = 0.9
"""The prediction is the larger of two estimates, each less its caution: one from all of the
request's values, one from its recent ones (each value weighing 0.9 times the next, so about
the last ten). An answer changes regime: a few sentences of prose and then a code block or a
worked formula, where the target turns sure for dozens of tokens; the mean of the whole
request climbs back too slowly (an mt_bench answer replayed from fresh prompts stayed below
the switch-on point for 55 sure tokens in a row). The recent estimate is the more cautious
one early (fewer effective values), so it switches the draft on only after a sure stretch.
Replayed on 60 fresh draft traces (three sets of 12-24 Spec-Bench questions no constant had
been chosen on until then, docs/benchmarks.md), mt_bench rose from 0.93 to 0.98 of its best
fixed k (with the bound of :meth:`LookaheadController.expected_remaining`, which the recent
estimate needs: alone it cost rag 5%); 0.85 and 0.9 were within 1% of each other."""

CONFIDENCE_CAP: Final = 0.99
"""Predicted acceptance never above this: at 1.0 every depth would look free."""

CONFIDENCE_MARGIN: Final = 0.0
"""The margin a model draft must clear when the target's confidence decides (instead of
:data:`MODEL_DRAFT_MARGIN`). That margin stands mostly for what a probe's estimates cannot see,
the draft's reading of what it missed; here that read is priced from measured read times. On
the replay, 5% kept math_reasoning at 0.95 of the best fixed k, 0 at 0.97, with rag (the
category with long prompts to read) at 0.98 and 0.97."""

LENGTH_MEMORY: Final = 32
"""How many recent requests' lengths say how long the current one will go on (see
:meth:`LookaheadController.expected_remaining`)."""


BATCH_BAND_GROWTH: Final = 4
"""Batch-size bands grow 4x (1-4, 5-16, 17-64, ...) and the deepest k halves per band: a
busier engine has less idle compute to spend on rejected drafts. This is vLLM's
``num_speculative_tokens_per_batch_size`` in ``mode="static"``, read once at start; in
``mode="adaptive"`` the proposer switches by measured throughput instead
(:mod:`~sage_llm_strategy_dynamic.load_gate`)."""


def batch_size_schedule(min_tokens: int, max_tokens: int) -> list[list[int]]:
    """Rows ``[first, last, k]``: from batch size 1, never overlapping, k halving per band from
    ``max_tokens`` down to ``min_tokens``; the last row's k holds for every larger batch."""
    rows: list[list[int]] = []
    first, last, k = 1, BATCH_BAND_GROWTH, max_tokens
    while True:
        rows.append([first, last, k])
        if k <= min_tokens:
            return rows
        k = max(min_tokens, k // 2)
        first, last = last + 1, last * BATCH_BAND_GROWTH


def expected_tokens(acceptance: Sequence[float], k: int) -> float:
    """``E(k) = 1 + sum_{i<=k} prod_{j<=i} a_j``: the tokens one step commits on average."""
    total, run = 1.0, 1.0
    for a in acceptance[:k]:
        run *= a
        total += run
    return total


def _discounted_sums(sums: Sequence[float], x: float, y: float) -> list[float]:
    """``sums`` (1, x, x^2, y, x*y over past points, each discounted by LOSS_MEMORY) with
    the point ``(x, y)`` added: what a least-squares line through recent points needs."""
    out = [v * LOSS_MEMORY for v in sums]
    for i, v in enumerate((1.0, x, x * x, y, x * y)):
        out[i] += v
    return out


def _line(sums: Sequence[float], x: float) -> float | None:
    """The least-squares line through the points of ``sums`` (slope at least 0) at ``x``;
    ``None`` while the points' x do not differ by more than one (a line would be a guess)."""
    s0, s1, s2, sy, sxy = sums
    spread = s0 * s2 - s1 * s1
    if spread <= s0 * s0:
        return None
    slope = max(0.0, (s0 * sxy - s1 * sy) / spread)
    return (sy - slope * s1) / s0 + slope * x


class AcceptanceEstimates:
    """Per-position conditional acceptance with exponential forgetting (a discounted Beta)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.hits = [0.0] * depth
        self.trials = [0.0] * depth
        self.prior = PRIOR_ACCEPTANCE

    def reset(self, prior: float | None = None, keep: float = 0.0) -> None:
        """Start over (``keep`` of what was observed is kept, as a weaker prior)."""
        self.hits = [h * keep for h in self.hits]
        self.trials = [t * keep for t in self.trials]
        if prior is not None:
            self.prior = prior

    def observe(self, tested: int, accepted: int, first: int = 0) -> None:
        """Positions ``first..tested-1`` (0-based) were checked; the first ``accepted`` held.

        Only positions up to and including the first rejection count: after it, the target
        never judged the proposal (``a_j`` is conditional on the earlier positions).
        """
        last = min(tested, accepted + 1, self.depth)
        for j in range(first, last):
            self.hits[j] = self.hits[j] * MEMORY + (1.0 if j < accepted else 0.0)
            self.trials[j] = self.trials[j] * MEMORY + 1.0
        if first == 0:  # once per step: what was not judged grows stale
            for j in range(last, self.depth):
                self.hits[j] *= STALE_MEMORY
                self.trials[j] *= STALE_MEMORY

    def estimates(self) -> list[float]:
        out: list[float] = []
        prior = self.prior
        for hit, trial in zip(self.hits, self.trials, strict=True):
            a = (hit + PRIOR_WEIGHT * prior) / (trial + PRIOR_WEIGHT)
            out.append(a)
            prior = a
        return out


class _Moments:
    """Mean and standard error of a stream of values (the target's confidences), each value
    weighing ``decay`` times the one after it (1: all alike)."""

    def __init__(self, decay: float = 1.0) -> None:
        self.decay = decay
        self.count = 0
        self.weight = 0.0  # sum of the weights
        self.weight_sq = 0.0  # sum of the squared weights (for the effective count)
        self.total = 0.0
        self.squares = 0.0

    def add(self, values: Sequence[float]) -> None:
        d = self.decay
        for v in values:
            self.count += 1
            self.weight = self.weight * d + 1.0
            self.weight_sq = self.weight_sq * d * d + 1.0
            self.total = self.total * d + v
            self.squares = self.squares * d + v * v

    @property
    def mean(self) -> float:
        return self.total / self.weight if self.weight else 0.0

    @property
    def stderr(self) -> float:
        """The spread over the square root of the effective count of values."""
        if self.weight == 0.0:
            return 0.0
        variance = max(0.0, self.squares / self.weight - self.mean**2)
        return math.sqrt(variance * self.weight_sq) / self.weight

    def lower(self, caution: float) -> float:
        """The mean less ``caution`` standard errors."""
        return self.mean - caution * self.stderr


class StepCosts:
    """Seconds per step by number of tokens in the verify pass, from measured step times.

    ``profile`` (seconds for a pass of ``1..len(profile)`` tokens, e.g. from a calibration of
    the target model) fills sizes never observed yet, scaled by how the observed sizes compare
    with it (the cache grows during a request, so every pass gets slower alike). Without a
    profile an unobserved size costs what the nearest observed size costs; with nothing
    observed every size costs the same, and the choice rests on acceptance alone.
    """

    def __init__(self, max_pass: int, profile: Sequence[float] | None = None) -> None:
        self.max_pass = max_pass
        self.mean: list[float | None] = [None] * (max_pass + 1)  # index = tokens in the pass
        self.profile: list[float] | None = None
        self.draft_per_token: float = 0.0
        self.overhead: float = 0.0  # the loop's own time per step, whatever k is
        self._read_sums = [0.0] * 5  # discounted sums: 1, n, n^2, seconds, n * seconds
        self.set_profile(profile)

    def set_profile(self, profile: Sequence[float] | None) -> None:
        if profile is None:
            self.profile = None
            return
        values = [float(v) for v in profile]
        if not values or any(not math.isfinite(v) or v <= 0 for v in values):
            raise ValueError(f"a cost profile needs positive finite seconds, got {values!r}")
        while len(values) < self.max_pass:  # beyond the calibrated sizes: as the largest
            values.append(values[-1])
        self.profile = values[: self.max_pass]

    def observe_pass(self, tokens: int, seconds: float) -> None:
        if not 1 <= tokens <= self.max_pass or not math.isfinite(seconds) or seconds <= 0:
            return
        old = self.mean[tokens]
        if old is None:
            self.mean[tokens] = seconds
            return
        seconds = min(seconds, OUTLIER_FACTOR * old)
        self.mean[tokens] = old + COST_SMOOTHING * (seconds - old)

    def observe_draft(self, tokens: int, seconds: float) -> None:
        """A model draft took ``seconds`` for ``tokens`` tokens (lookup proposers: never)."""
        if tokens < 1 or not math.isfinite(seconds) or seconds < 0:
            return
        sample = seconds / tokens
        if self.draft_per_token == 0.0:
            self.draft_per_token = sample
        else:
            sample = min(sample, OUTLIER_FACTOR * self.draft_per_token)
            self.draft_per_token += COST_SMOOTHING * (sample - self.draft_per_token)

    def observe_read(self, tokens: int, seconds: float) -> None:
        """A model draft's first pass of a call read ``tokens`` tokens (what it had missed)
        in ``seconds``: one or two after a drafting step, a whole prompt at a request's start."""
        if tokens < 1 or not math.isfinite(seconds) or seconds < 0:
            return
        self._read_sums = _discounted_sums(self._read_sums, float(tokens), seconds)

    def read_cost(self, tokens: int) -> float | None:
        """Seconds for the draft to read ``tokens`` missed tokens: the least-squares line
        through the reads timed so far (slope at least 0). With one size timed so far, that
        read's seconds per token times ``tokens``: a forward pass reads many tokens for
        little more than one, so this overstates a long read, and no switch-on bets on a
        cheap long read that was never seen. ``None`` before any read was timed."""
        s0, s1, _, sy, _ = self._read_sums
        if s0 == 0.0:
            return None
        line = _line(self._read_sums, tokens)
        if line is not None:
            return max(0.0, line)
        return sy / s1 * tokens

    def observe_overhead(self, seconds: float) -> None:
        """Time per step spent outside the draft and the verify pass (committing, lookup)."""
        if not math.isfinite(seconds) or seconds < 0:
            return
        if self.overhead == 0.0:
            self.overhead = seconds
        else:
            seconds = min(seconds, OUTLIER_FACTOR * self.overhead)
            self.overhead += COST_SMOOTHING * (seconds - self.overhead)

    def pass_cost(self, tokens: int) -> float:
        """Seconds (or relative units before any measurement) for a pass of ``tokens``."""
        seen = self.mean[tokens]
        if seen is not None:
            return seen
        observed = [(n, m) for n, m in enumerate(self.mean) if m is not None]
        if self.profile is not None:
            ratios = [m / self.profile[n - 1] for n, m in observed]
            scale = math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else 1.0
            return self.profile[tokens - 1] * scale
        if not observed:
            return 1.0
        below = [nm for nm in observed if nm[0] < tokens]
        above = [nm for nm in observed if nm[0] > tokens]
        if below and above:  # between two measured sizes: on the line between them
            (n0, m0), (n1, m1) = below[-1], above[0]
            return m0 + (m1 - m0) * (tokens - n0) / (n1 - n0)
        return (below[-1] if below else above[0])[1]

    def step_cost(self, k: int) -> float:
        return self.pass_cost(1 + k) + self.draft_per_token * k + self.overhead

    def draft_break_even(self) -> float:
        """The chance of being accepted at which drafting one more token pays for itself:
        its drafting time plus the verify position it adds, over the plain step an accepted
        token saves. The position's cost is the mean slope of the pass cost from 2 tokens to
        the largest (single sizes are noisy: one measured table had a 7-token pass dearer
        than an 8-token one; the step from 1 to 2 tokens is the price of speculating at all,
        paid before the first drafted token). 0.4 for the 0.5B draft of the 1.5B target on
        the 2-core VM, where a drafted token costs 0.4 plain steps and a verify position
        0.02; lower where drafting is cheap next to the target (a GPU)."""
        n = self.max_pass
        slope = (self.pass_cost(n) - self.pass_cost(2)) / (n - 2) if n > 2 else 0.0
        plain = self.step_cost(0)
        return min(1.0, (self.draft_per_token + max(0.0, slope)) / plain) if plain > 0 else 0.0


class LookaheadController:
    """Chooses ``k`` per step in ``[min_tokens, max_tokens]`` (0 allowed when min_tokens is 0).

    Feed it what happened: :meth:`observe` (positions checked and accepted), and step times
    (:attr:`costs`). ``cap`` lowers the deepest ``k`` from outside (a control plane under load)
    without touching what was learned.
    """

    def __init__(
        self,
        min_tokens: int,
        max_tokens: int,
        *,
        profile: Sequence[float] | None = None,
    ) -> None:
        if isinstance(min_tokens, bool) or isinstance(max_tokens, bool):
            raise ValueError("min_tokens and max_tokens must be integers")
        if not 0 <= min_tokens <= max_tokens or max_tokens < 1:
            raise ValueError(
                "LookaheadController needs 0 <= min_tokens <= max_tokens and max_tokens >= 1, "
                f"got min_tokens={min_tokens}, max_tokens={max_tokens}."
            )
        self.min_tokens = min_tokens
        self.max_tokens = max_tokens
        self.states = {
            False: AcceptanceEstimates(max_tokens),
            True: AcceptanceEstimates(max_tokens),
        }
        self.state = False
        """Which estimates apply to this step: ``True`` while the proposer continues a proposal
        that has matched so far (a copy in progress), ``False`` for a fresh one. Set by the
        proposer before :meth:`choose`; a copy in progress is far likelier to go on."""
        self.costs = StepCosts(max_tokens + 1, profile)
        self._cap = max_tokens
        self._last = max_tokens
        self._off_steps = 0
        self._probe_every = PROBE_FIRST
        self._probing = False
        self._credit = 0.0  # seconds probes may still lose (see PROBE_BUDGET)
        self.margin = 0.0
        """Speculate only when expected to be this much faster than plain decoding (a model
        draft sets :data:`MODEL_DRAFT_MARGIN`; a cheap lookup needs none)."""
        self.probe_loss: float | None = None
        """Running mean of the seconds a probe lost against plain decoding of the tokens it
        committed (drafting, the draft catching up, verifying), measured; negative when
        probes gained."""
        self._loss_sums = [0.0] * 5  # discounted sums: 1, n, n^2, loss, n * loss
        self._probe_paid: bool | None = None  # the pending probe's measured verdict
        self._last_probe_paid = False
        self._plain_first = True
        self._run_hits = 0.0  # discounted acceptance of position 1 across requests
        self._run_trials = 0.0
        # The target's confidence (engines that report it, see observe_confidence):
        self._confidence = _Moments()  # this request's reported values
        self._recent = _Moments(CONFIDENCE_RECENCY)  # ... recent ones weighing more
        self._calibration = [CALIBRATION_PRIOR, CALIBRATION_PRIOR]  # tokens got, predicted
        self._step_confidence: float | None = None  # the request's mean when k was chosen
        self._lengths: list[int] = []  # tokens reported by recent requests
        self.draft_stops = False
        """The proposer ends each draft by itself where one more token stops paying (a
        model draft whose cumulative confidence stop is set from
        :meth:`StepCosts.draft_break_even`):
        then, when the target's confidence switches the draft on, it drafts up to the deepest
        allowed ``k`` and the stop decides the depth, token by token, from the draft's own
        probabilities, which know more about this step than any estimate made before it."""

    @property
    def acceptance(self) -> AcceptanceEstimates:
        """The estimates of the current :attr:`state`."""
        return self.states[self.state]

    # -- control from outside ---------------------------------------------------------------

    @property
    def cap(self) -> int:
        return self._cap

    def set_cap(self, cap: int | None) -> None:
        """Never propose more than ``cap`` tokens (``None``: back to ``max_tokens``).

        A cap below ``min_tokens`` wins over it: the control plane asked for less work.
        """
        if cap is None:
            self._cap = self.max_tokens
            return
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise ValueError(f"cap must be an integer >= 0 or None, got {cap!r}")
        self._cap = min(cap, self.max_tokens)

    # -- per request ------------------------------------------------------------------------

    def start_request(self) -> None:
        """A new request: start from what its predecessors taught (see ``CARRY_OVER_*``).

        The probe schedule and credit carry over whole (see :data:`PROBE_BUDGET`)."""
        prior = None
        if self._run_trials > 0:
            prior = (self._run_hits + PRIOR_WEIGHT * PRIOR_ACCEPTANCE) / (
                self._run_trials + PRIOR_WEIGHT
            )
        self.states[True].reset(prior, CARRY_OVER_COPY)
        self.states[False].reset(prior, CARRY_OVER_FRESH)
        self.state = False
        self._last = self.max_tokens
        if self._confidence.count > 0:
            self._lengths = [*self._lengths, self._confidence.count][-LENGTH_MEMORY:]
        self._confidence = _Moments()
        self._recent = _Moments(CONFIDENCE_RECENCY)
        self._step_confidence = None
        self._calibration = [
            v * CALIBRATION_RECOVERY + CALIBRATION_PRIOR * (1.0 - CALIBRATION_RECOVERY)
            for v in self._calibration
        ]

    def observe(
        self, tested: int, accepted: int, first: int = 0, state: bool | None = None
    ) -> None:
        """Positions ``first..tested-1`` were checked against the target; ``accepted`` held.

        ``state``: the :attr:`state` the proposal was made in (default: the current one).
        """
        if tested <= first:
            return
        self.states[self.state if state is None else state].observe(tested, accepted, first)
        seen, self._step_confidence = self._step_confidence, None
        if seen is not None and first == 0:  # how the prediction did (see observe_confidence)
            got, expected = self._calibration
            self._calibration = [
                got * CALIBRATION_MEMORY + 1 + min(accepted, tested),
                expected * CALIBRATION_MEMORY + expected_tokens([seen] * tested, tested),
            ]
        if self._probing and first == 0:
            self._probing = False
            # Promising: back to the shortest interval. The verdict itself raised the
            # estimates, so if speculating now pays, choose() switches it on. A probe whose
            # time was measured is promising when it paid for itself; otherwise, when a
            # token was accepted.
            paid, self._probe_paid = self._probe_paid, None
            if (accepted > 0) if paid is None else paid:
                self._probe_every = PROBE_FIRST
                self._off_steps = 0
        if first == 0:
            self._run_hits = self._run_hits * MEMORY + (1.0 if accepted > 0 else 0.0)
            self._run_trials = self._run_trials * MEMORY + 1.0

    # -- the target's confidence (engines that report it) --------------------------------------

    def observe_confidence(self, confidence: Sequence[float]) -> None:
        """The target's probability of each token it just committed (the engine's report,
        :class:`~sage.llm.proposer.ConfidenceAwareProposer`), oldest first.

        A model draft that is off learns nothing from its verdicts, and running it to find
        out (a probe) costs several plain steps where it is poor. This comes free with every
        step: where the target is sure, a draft tends to agree with it. Once a request has
        reported :data:`CONFIDENCE_MIN_TOKENS` values, :meth:`choose` decides a model draft's
        steps from it (:meth:`confident_choice`) instead of from probes."""
        values = [float(c) for c in confidence if math.isfinite(c) and 0.0 <= c <= 1.0]
        self._confidence.add(values)
        self._recent.add(values)

    @property
    def hears_confidence(self) -> bool:
        """The engine reports the target's confidence in this request."""
        return self._confidence.count > 0

    def predicted_acceptance(self) -> float | None:
        """The acceptance of a drafted position expected from the request's target
        confidence so far: the mean of its values, or of its recent ones where that is
        higher (:data:`CONFIDENCE_RECENCY`), less :data:`CONFIDENCE_CAUTION` standard errors;
        ``None`` until :data:`CONFIDENCE_MIN_TOKENS` were reported."""
        if self._confidence.count < CONFIDENCE_MIN_TOKENS:
            return None
        estimate = max(
            self._confidence.lower(CONFIDENCE_CAUTION), self._recent.lower(CONFIDENCE_CAUTION)
        )
        return min(CONFIDENCE_CAP, max(0.0, estimate))

    @property
    def calibration(self) -> float:
        """Tokens the draft's steps committed over the tokens predicted for them, at most 1
        (see :data:`CALIBRATION_PRIOR`)."""
        got, predicted = self._calibration
        return min(1.0, got / predicted)

    def expected_remaining(self, limit: int) -> float:
        """Tokens the current request is expected to go on for: the mean of what recent
        requests that got this far went on for, but never more than it has run so far (the
        Lindy estimate: a request seen for ``t`` tokens is as likely to stop before ``2t`` as
        after), and at most ``limit``, what the engine allows. The engine's budget alone
        overstates it: a 20-token answer under a 96-token budget would be priced as if it
        had 90 tokens to pay a switch-on back. So does the mean of other requests: answers
        to a long retrieved context are short while summaries of one run long, and a short
        rag answer that switched the draft on at its 12th token paid for reading an
        800-token prompt with the 12 tokens it had left (0.76x of plain; replayed, the bound
        lifted rag from 0.94 to 0.97 of plain on the fresh traces, docs/benchmarks.md)."""
        done = self._confidence.count
        longer = [n - done for n in self._lengths if n > done]
        seen = sum(longer) / len(longer) if longer else float(done)
        return min(float(limit), float(done), seen if self._lengths else float(limit))

    def confident_choice(self, candidates: Sequence[int], catch_up: int, limit: int) -> int | None:
        """How deep a model draft goes this step, from the target's confidence: the ``k``
        with the largest expected gain over a plain step at the predicted acceptance (times
        :attr:`calibration`), or 0 when none gains. Switching the draft on (``catch_up`` > 1:
        it first reads what it missed) must also pay for that read, this step or over the
        steps the request is expected to go on for (:meth:`expected_remaining`), at the same
        gain per step.
        ``None`` when there is no prediction yet, or when no read was timed yet: then the
        probes of :meth:`choose` decide, and the first read is priced by their budget."""
        a = self.predicted_acceptance()
        if a is None:
            return None
        plain = self.costs.step_cost(0)
        margin = 1.0 + CONFIDENCE_MARGIN
        calibration = self.calibration
        gain, best = 0.0, 0
        for k in candidates:
            if k > 0:
                tokens = expected_tokens([a] * k, k) * calibration
                g = tokens * plain - self.costs.step_cost(k) * margin
                if g > gain:
                    gain, best = g, k
        if best == 0 or catch_up <= 1:
            return best
        read = self.costs.read_cost(catch_up)
        if read is None:
            return None
        extra = max(0.0, read - self.costs.draft_per_token)  # beyond drafting's first token
        steps = max(1.0, self.expected_remaining(limit) / expected_tokens([a] * best, best))
        return best if gain * steps >= extra else 0

    @property
    def probing(self) -> bool:
        """The last :meth:`choose` was a probe (its verdict is still to come)."""
        return self._probing

    def observe_probe(self, seconds: float, k: int, accepted: int, catch_up: int = 0) -> None:
        """A probe of ``k`` tokens took ``seconds`` in all (the draft first reading the
        ``catch_up`` tokens it missed, drafting, verifying) and got ``accepted`` of them
        accepted: spend what it lost against plain decoding of the ``1 + accepted`` tokens it
        committed. A probe that gained pays the credit back."""
        if not math.isfinite(seconds) or seconds < 0 or k < 1:
            return
        loss = seconds - (1 + min(accepted, k)) * self.costs.step_cost(0)
        self._credit -= loss
        self._probe_paid = self._last_probe_paid = loss <= 0.0
        if self.probe_loss is None:
            self.probe_loss = loss
        else:
            self.probe_loss += COST_SMOOTHING * (loss - self.probe_loss)
        self._loss_sums = _discounted_sums(self._loss_sums, float(max(0, catch_up)), loss)

    def expected_probe_loss(self, catch_up: int) -> float | None:
        """Seconds a probe that must first read ``catch_up`` missed tokens is expected to
        lose: the least-squares line through past probes' losses against their catching-up
        (its slope at least 0). While they all read about as many tokens, one point says
        nothing of how reading scales: their mean loss, until a probe that reads a different
        number fixes the line. (Scaling one probe's loss with the read would take its fixed
        part, drafting and verifying, for reading: in a long request, where the draft falls
        further behind every step, no probe would ever be affordable again.)
        ``None`` before the first probe."""
        s0, _, _, sy, _ = self._loss_sums
        if s0 == 0.0:
            return None
        line = _line(self._loss_sums, catch_up)
        return sy / s0 if line is None else line

    def probe_depth(self, candidates: Sequence[int]) -> int | None:
        """The depth among ``candidates`` that pays at the lowest acceptance (the same at
        every position), with the costs measured so far; ``None`` when none would pay even if
        every drafted token were accepted."""
        plain = self.costs.step_cost(0)
        best: tuple[float, int] | None = None
        for k in candidates:
            if k <= 0:
                continue
            need = (1.0 + self.margin) * self.costs.step_cost(k) / plain  # E(k) to break even
            if k + 1 <= need:
                continue
            lo, hi = 0.0, 1.0
            for _ in range(30):  # E(k) grows with the acceptance: bisect for the break-even
                mid = (lo + hi) / 2
                if expected_tokens([mid] * k, k) < need:
                    lo = mid
                else:
                    hi = mid
            if best is None or hi < best[0]:
                best = (hi, k)
        return None if best is None else best[1]

    # -- the decision -----------------------------------------------------------------------

    def candidates(self, limit: int) -> list[int]:
        """The depths allowed this step, ``limit`` being what the engine or proposal allows."""
        top = min(self._cap, limit, self.max_tokens)
        if top <= 0:
            return [0]
        low = max(1, min(self.min_tokens, top))
        ks = list(range(low, top + 1))
        if self.min_tokens == 0 or self._cap < low:
            ks.insert(0, 0)
        return ks

    def scores(self, limit: int) -> dict[int, float]:
        """Expected tokens per second (per cost unit) for each allowed ``k``."""
        acceptance = self.acceptance.estimates()
        return {
            k: expected_tokens(acceptance, k) / self.costs.step_cost(k)
            for k in self.candidates(limit)
        }

    def by_confidence(
        self, scores: dict[int, float], best: int, catch_up: int, limit: int
    ) -> int | None:
        """A model draft's step when the engine reports the target's confidence: plain for
        the request's first tokens, then :meth:`confident_choice`; while the draft runs,
        at least as deep as the verdicts' own estimates (``best``) prefer, which know how
        runs of accepted tokens go on. No probes: they are what this signal replaces.
        ``None``: fall back to probes (no read timed yet)."""
        k = 0
        if self._confidence.count >= CONFIDENCE_MIN_TOKENS:
            depths = [k for k in scores if k > 0]
            chosen = self.confident_choice(depths, catch_up, limit)
            if chosen is None:
                return None
            if chosen > 0 and self.draft_stops:
                k = max(depths)  # the draft's own stop decides how deep (see draft_stops)
            else:
                k = max(chosen, best) if chosen > 0 and catch_up == 0 else chosen
        if k > 0 and catch_up > 0:
            self._probing = True  # a switch-on: its loss is measured as a probe's
        self._last = k
        # The calibration compares the draft with the target's plain mean confidence (a
        # property of the pair); the caution is about how little of this request was seen.
        self._step_confidence = self._confidence.mean if k > 0 else None
        return k

    def choose(self, limit: int, *, learns_when_off: bool = False, catch_up: int = 0) -> int:
        """The ``k`` for this step. ``learns_when_off``: the caller keeps observing proposals
        while speculation is off (from committed tokens), so no probe is needed. ``catch_up``:
        the tokens a costly proposer must read before it can propose (it did not run at the
        previous step); switching it on is then a probe (see :data:`PROBE_FIRST`)."""
        scores = self.scores(limit)
        if self._plain_first and not learns_when_off and 0 in scores:
            # A costly proposer's first step is plain, once: every choice is weighed against
            # a plain step's time, and an unmeasured one is guessed from the sizes that were
            # measured, all dearer (speculating from the first step, a 1.5B target with its
            # 0.5B draft never timed a plain step and took 2-token passes, at 1.7 plain steps
            # each, for cheap; replay of the draft traces, docs/benchmarks.md).
            self._plain_first = False
            if self.costs.mean[1] is None and self.costs.profile is None:
                self._last = 0
                return 0
        best = max(scores, key=lambda k: (scores[k], -k))
        if not learns_when_off and 0 in scores and len(scores) > 1 and self.hears_confidence:
            by_confidence = self.by_confidence(scores, best, catch_up, limit)
            if by_confidence is not None:
                return by_confidence
        if self._last in scores and scores[self._last] * (1.0 + HYSTERESIS) >= scores[best]:
            best = self._last
        if best > 0 and 0 in scores and scores[best] < scores[0] * (1.0 + self.margin):
            best = 0  # not clearly worth it for a proposer whose costs are hard to predict
        if learns_when_off or len(scores) == 1 or 0 not in scores:
            self._last = best
            return best
        switching_on = best > 0 and catch_up > 0
        if best == 0 or switching_on:
            self._off_steps += 1
            plain = self.costs.step_cost(0)
            self._credit += PROBE_BUDGET * plain
            expected = self.expected_probe_loss(catch_up)
            if self.probe_loss is not None and expected is not None:
                cap = PROBE_CREDIT_LIMIT * max(self.probe_loss, plain, expected)
                self._credit = min(self._credit, cap)
            # After a probe that paid for itself the next one may follow on any credit: where
            # the draft has just turned good, waiting for the losses of its bad spell to be
            # paid off again would keep it off for hundreds of steps.
            due = (
                expected is None
                or self._credit >= expected
                or (self._last_probe_paid and self._credit >= 0.0)
            )
            if switching_on:  # the estimates say speculate: as soon as it is paid for
                if not due:
                    best = 0
            elif self._off_steps >= self._probe_every and due:
                depth = self.probe_depth([k for k in scores if k > 0])
                if depth is not None:
                    self._off_steps = 0
                    self._probe_every = min(PROBE_LAST, self._probe_every * 2)
                    self._probing = True
                    return depth  # a probe does not become the new "last" choice
            if best > 0:
                self._probing = True  # its loss is measured as a probe's
        if best > 0:
            self._off_steps = 0
            self._probe_every = PROBE_FIRST
        self._last = best
        return best
