"""Scheduling policies: whether a request runs with speculation, decided per engine from load.

Speculation buys latency with extra compute: each step verifies ``k`` proposed tokens, and a
rejected token is compute thrown away. With spare compute (a small batch) that trade wins;
when the batch already keeps the hardware busy, the verify work displaces other requests'
tokens and throughput falls (vLLM measured up to 2.8x faster at low request rates and
1.4x-1.8x slower at high rates). A policy sees an engine's load and its measured goodput
and answers with a :class:`Decision`.

- ``always``: speculate whenever the engine has a strategy.
- ``never``: plain decoding (the strategy stays configured, unused).
- ``adaptive``: off when the batch is too large to profit (batching engines); otherwise on
  when the predicted gain ``E / r`` clears a hysteresis band: ``E`` is the measured tokens
  per speculative step (exact counts), ``r`` the measured cost of a speculative step relative
  to a plain one: read inside speculative requests, from their steps with and without a
  proposal (same prompt, same moment, so neither the prompt mix nor host noise enters), or,
  where an engine does not time plain steps apart, from paired per-step times of
  neighbouring requests. A bounded share of requests probes the other mode, because
  acceptance drifts with the traffic.
  Comparing wall-clock tokens/s instead chose plain for 34 of 37 requests on a loaded host
  although speculation was 1.45x faster.

Both modes are lossless, so a switch changes speed only, never a token; a decision applies to
whole requests, so no request is dropped or restarted by a switch. A third-party policy is a
:class:`SchedulingPolicy` subclass registered through the ``register_scheduling_policies``
hook (see :mod:`sage.llm.control_plane.hooks`).
"""

from __future__ import annotations

import math
import statistics
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Final

from sage.llm.control_plane.errors import UnknownPolicyError
from sage.llm.control_plane.states import Capabilities

if TYPE_CHECKING:
    from sage.llm.control_plane.requests import Completion
    from sage.llm.metrics import SpecDecodeMetrics


@dataclass(frozen=True)
class LoadView:
    """What a policy sees of one engine when it decides."""

    engine_id: str
    engine_kind: str
    capabilities: Capabilities
    has_strategy: bool
    queue_depth: int
    """Requests waiting (not yet running)."""
    running: int
    """Requests running now, the batch size (at most 1 on a single-stream engine)."""


@dataclass(frozen=True)
class Decision:
    """A policy's answer. ``num_speculative_tokens=None`` keeps the strategy's own k."""

    speculate: bool
    reason: str
    num_speculative_tokens: int | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "speculate": self.speculate,
            "reason": self.reason,
            "num_speculative_tokens": self.num_speculative_tokens,
        }


class SchedulingPolicy:
    """Base class. ``decide`` runs on the engine's worker thread before each request starts
    (or once at start for engines that cannot switch per request); ``observe`` receives each
    finished request so the policy can measure what its choices gave."""

    name: ClassVar[str] = ""

    def decide(self, view: LoadView) -> Decision:
        raise NotImplementedError

    def observe(self, engine_id: str, completion: Completion) -> None:
        """Feedback from a finished request (default: ignore)."""

    def describe(self) -> dict[str, object]:
        return {"name": self.name}


class AlwaysPolicy(SchedulingPolicy):
    name = "always"

    def decide(self, view: LoadView) -> Decision:
        if not view.has_strategy:
            return Decision(False, "the engine has no strategy")
        return Decision(True, "policy always")


class NeverPolicy(SchedulingPolicy):
    name = "never"

    def decide(self, view: LoadView) -> Decision:
        return Decision(False, "policy never")


ACCEPTANCE_WINDOW: Final = 32
"""Speculative requests whose exact acceptance counts are pooled into tokens per step. The
counts are free of host noise but not of the traffic's own variety: in the load benchmark one
prompt in five is copied into its answer (4 tokens per step) and the rest accept almost
nothing, so a window of 4 requests now and then held only poor prompts and switched
speculation off for dozens of requests (0.73x of ``always``, docs/notes/server-load.md). 32 requests
hold about six of the good prompts of such a mix (16 still left the choice to chance one run
in seven); when acceptance collapses while speculating the choice follows within about this
many requests, sooner the clearer the collapse (see :meth:`_Estimate.gain_error`)."""

EARLY_PROBE_EVERY: Final = 3
"""While plain is the exploited mode but speculation may still be the better one (the gain
plus its error reaches :data:`ENTER_GAIN`), one request in 3, not one in ``probe_every``,
speculates: a few warm-up requests cannot represent a varied traffic, and the estimate that
keeps speculation off must become certain before probing becomes rare."""

COST_WINDOW: Final = 16
"""Paired cost-ratio samples kept. The cost ratio is the median of these pairs: a slowdown that
hits a few requests does not move a median, and one that lasts (CI starting next to the
server) hits both requests of a pair alike and cancels in their ratio. 16 pairs span the last
eight probes."""

PAIR_GAP: Final = 2
"""A request's per-step time pairs with the other mode's latest one if that came at most this
many finished requests earlier: each probe pairs with its neighbours on both sides, and never
with a measurement old enough for the host's load to have changed since."""

ENTER_GAIN: Final = 1.05
"""Plain switches to speculation when the predicted speedup reaches this (5% above break-even,
so a marginal estimate does not toggle the mode) and, less :data:`CONFIDENCE` standard errors,
is still at least break-even."""

LEAVE_GAIN: Final = 1.02
"""Speculation switches off when the predicted speedup, plus :data:`CONFIDENCE` standard
errors, falls under this. Above 1, so a strategy that accepts nothing (1 token per step, cost
ratio >= 1, gain <= 1, no spread) is always switched off; the band between it and
:data:`ENTER_GAIN`, widened by the estimate's own uncertainty, is the hysteresis."""

MIN_PLAIN_STEPS: Final = 4
"""A speculative request measures its own draft-step cost (relative to its own plain steps)
when it had at least this many steps without a proposal: fewer plain steps make a noisy
reference. Neighbouring requests are different prompts with different context lengths: at 16
clients on the reference engine their pairs read a cost ratio of 1.77 where the steps cost
about 1.4x, and the policy kept speculation off at 0.94x of ``always``
(docs/notes/server-load.md)."""

MIN_OWN_SAMPLES: Final = 3
"""Requests that measured their own draft-step cost needed before that measurement replaces
the pairs of neighbouring requests. From then on, while speculating, no request probes plain
decoding: speculative requests measure both ``E`` and ``r``, and a plain probe only cost
speed (on the load benchmark's mix a probe that lands on the prompt copied into its answer
gives up a 4x faster request; 1 in 10 plain probes held ``adaptive`` at 0.82x-0.96x of
``always`` at 2-16 clients, docs/notes/server-load.md)."""

CONFIDENCE: Final = 1.0
"""Standard errors of the predicted gain a switch must clear. Real traffic is a mix (a few
prompts copied into their answers, most not), so the pooled tokens per step of a window varies
with which prompts it holds; a switch then needs evidence in proportion to that variety, while
a uniform traffic (small error) switches at the bare band. One standard error: with the
benchmark's mix (true gain 1.14) the policy stayed on for 95% of requests where the point
estimate alone (10% band) was on for 40%."""


@dataclass
class _Estimate:
    """What the policy measured on one engine (``None`` where nothing is measured yet)."""

    spec_counts: deque[tuple[int, int, int]] = field(
        default_factory=lambda: deque(maxlen=ACCEPTANCE_WINDOW)
    )
    """(tokens committed by decode steps, decode steps, steps with a proposal) of recent
    speculative requests."""
    draft_step_costs: deque[float] = field(default_factory=lambda: deque(maxlen=ACCEPTANCE_WINDOW))
    """Per speculative request that timed its plain steps apart: the cost of one of its steps
    with a proposal over the cost of one of its plain steps (:func:`draft_step_cost`)."""
    ratios: deque[float] = field(default_factory=lambda: deque(maxlen=COST_WINDOW))
    """Paired samples of (speculative per-step time) / (plain per-step time)."""
    last_step_s: dict[bool, tuple[int, float]] = field(default_factory=dict)
    """Per mode: (finished-request count, per-step decode time) of its latest request."""
    finished: int = 0
    samples: dict[bool, int] = field(default_factory=lambda: {True: 0, False: 0})
    speculating: bool | None = None
    """The exploited mode (hysteresis state); ``None`` until the warm-up is measured, when the
    point estimate against :data:`LEAVE_GAIN` picks the first mode; the band applies after."""
    decisions: int = 0

    def tokens_per_step(self) -> float | None:
        """Mean tokens one speculative step commits (1 + accepted / step), from exact counts."""
        tokens = sum(t for t, _, _ in self.spec_counts)
        steps = sum(s for _, s, _ in self.spec_counts)
        return tokens / steps if steps else None

    def draft_share(self) -> float:
        """Share of the speculative requests' steps that had a proposal."""
        steps = sum(s for _, s, _ in self.spec_counts)
        return sum(d for _, _, d in self.spec_counts) / steps if steps else 1.0

    def measures_own_steps(self) -> bool:
        """Enough speculative requests timed their own plain steps (:data:`MIN_OWN_SAMPLES`):
        ``r`` comes from them, and speculative requests alone measure both ``E`` and ``r``."""
        return len(self.draft_step_costs) >= MIN_OWN_SAMPLES

    def cost_ratio(self) -> float | None:
        """Time of a speculative request's step over a plain request's, at least 1 (a pass over
        1 + k tokens plus drafting is never cheaper than a pass over 1; a lower reading is
        noise).

        From requests' own measurements when there are enough: the median cost of a step with
        a proposal (``rho``, in plain steps), pooled with the window's share of such steps:
        ``1 + share * (rho - 1)``, the same pooling as the tokens per step. Otherwise the
        median of paired ratios of neighbouring requests."""
        if self.measures_own_steps():
            rho = max(1.0, statistics.median(self.draft_step_costs))
            return 1.0 + self.draft_share() * (rho - 1.0)
        return max(1.0, statistics.median(self.ratios)) if self.ratios else None

    def add_step_time(self, speculative: bool, step_s: float) -> None:
        """Record a request's per-step time and pair it with the other mode's latest one."""
        self.finished += 1
        other = self.last_step_s.get(not speculative)
        if other is not None and self.finished - other[0] <= PAIR_GAP and other[1] > 0:
            spec, plain = (step_s, other[1]) if speculative else (other[1], step_s)
            if plain > 0:
                self.ratios.append(spec / plain)
        self.last_step_s[speculative] = (self.finished, step_s)

    def gain(self) -> float | None:
        """Predicted decode-rate ratio speculative / plain: tokens per step over cost ratio."""
        tokens, ratio = self.tokens_per_step(), self.cost_ratio()
        if tokens is None or ratio is None:
            return None
        return tokens / ratio

    def gain_error(self) -> float:
        """Standard error of :meth:`gain` (0 with fewer than two samples of either part).

        Tokens per step is a ratio estimator over requests (delta method: the spread of each
        request's ``tokens - E * steps``); the cost ratio is a median of ratios (relative
        standard error about 1.25 standard deviations of their logarithms over the square root
        of their number). The relative errors add in quadrature."""
        gain, tokens = self.gain(), self.tokens_per_step()
        if gain is None or tokens is None:
            return 0.0
        rel2 = 0.0
        n = len(self.spec_counts)
        if n >= 2:
            mean_steps = sum(s for _, s, _ in self.spec_counts) / n
            residuals = [t - tokens * s for t, s, _ in self.spec_counts]
            se = statistics.stdev(residuals) / (mean_steps * n**0.5)
            rel2 += (se / tokens) ** 2
        own, m = self.draft_step_costs, len(self.ratios)
        if self.measures_own_steps():  # a median's error, scaled by the share it weighs in
            ratio = self.cost_ratio() or 1.0
            se_rho = 1.2533 * statistics.stdev(own) / len(own) ** 0.5
            rel2 += (self.draft_share() * se_rho / ratio) ** 2
        elif m >= 2:  # host noise multiplies times: its spread is measured in logs
            logs = [math.log(r) for r in self.ratios]
            rel2 += (1.2533 * statistics.stdev(logs) / m**0.5) ** 2
        return float(gain * math.sqrt(rel2))


def draft_step_cost(metrics: SpecDecodeMetrics) -> float | None:
    """What one step with a proposal cost in a speculative request, in its own plain steps.

    A plain step of a plain request is a one-token forward pass plus the loop's own per-step
    work (committing, detokenizing); the request's plain steps time the first
    (``plain_verify_time_s``), its decode time less the drafting and verifying times the
    second. The rest of the request's decode time went to its steps with a proposal, lookup
    time included. ``None`` with fewer than :data:`MIN_PLAIN_STEPS` plain steps, no step with
    a proposal, or an engine that does not time plain steps apart."""
    plain_steps, drafts = metrics.num_plain_steps, metrics.num_drafts
    if plain_steps < MIN_PLAIN_STEPS or drafts < 1 or metrics.plain_verify_time_s <= 0:
        return None
    decode = metrics.wall_time_s - metrics.prefill_time_s
    loop = max(0.0, decode - metrics.draft_time_s - metrics.verify_time_s) / metrics.num_steps
    plain_step = metrics.plain_verify_time_s / plain_steps + loop
    spent = decode - plain_steps * plain_step
    if spent <= 0:
        return None
    return spent / (drafts * plain_step)


class AdaptivePolicy(SchedulingPolicy):
    """Speculate when load leaves room and the measured goodput says it pays.

    Speculation's gain is ``E / r``: ``E``, the tokens one speculative step commits (exact
    counts from the engine's spec-decode metrics, the last :data:`ACCEPTANCE_WINDOW`
    speculative requests), over ``r``, the cost of a speculative step relative to a plain one:
    from speculative requests' own steps with and without a proposal
    (:func:`draft_step_cost`, the reference engine times them apart), else the median of
    paired per-step time ratios of neighbouring requests (:data:`COST_WINDOW`). ``E`` is a
    count and ``r`` a ratio of measurements taken side by side, so a host slowdown cannot
    flip the choice the way comparing tokens/s of different periods did. Hysteresis: switch
    on from :data:`ENTER_GAIN`, off under :data:`LEAVE_GAIN`, each widened by the estimate's
    standard error (:data:`CONFIDENCE`), since a varied traffic makes the pooled gain vary.

    ``max_batch``: on a batching engine, speculation is off from this many requests in the
    engine (running + queued): verification is then compute-bound and crowds out other
    requests. On a single-stream engine speculation only shortens the running request, so
    the queue does not matter. ``warmup``: requests measured in each mode, alternating,
    before deciding. ``probe_every``: one request in this many runs in the other mode (a
    bounded share, 10% by default), so both estimates stay fresh; one in
    :data:`EARLY_PROBE_EVERY` while plain is chosen but speculation may still be better; none
    while speculating on an engine whose speculative requests time their plain steps apart
    (they measure everything the choice needs, :data:`MIN_OWN_SAMPLES`).
    After a regime change the choice follows within about ``ACCEPTANCE_WINDOW`` requests when
    acceptance collapses, and within about ``EARLY_PROBE_EVERY * ACCEPTANCE_WINDOW / 2`` to
    ``probe_every * ACCEPTANCE_WINDOW`` when it returns (only probes see it).
    """

    name = "adaptive"

    def __init__(self, max_batch: int = 4, warmup: int = 4, probe_every: int = 10) -> None:
        if max_batch < 1 or warmup < 1 or probe_every < 2:
            raise ValueError(
                "adaptive policy: max_batch >= 1, warmup >= 1 and probe_every >= 2 are "
                f"required (got {max_batch}, {warmup}, {probe_every})."
            )
        self.max_batch = max_batch
        self.warmup = warmup
        self.probe_every = probe_every
        self._lock = threading.Lock()
        self._engines: dict[str, _Estimate] = {}

    def decide(self, view: LoadView) -> Decision:
        if not view.has_strategy:
            return Decision(False, "the engine has no strategy")
        load = view.running + view.queue_depth
        if view.capabilities.batching and load >= self.max_batch:
            return Decision(False, f"batch {load} >= {self.max_batch}: verify work would crowd out")
        with self._lock:
            est = self._engines.setdefault(view.engine_id, _Estimate())
            est.decisions += 1
            if min(est.samples.values()) < self.warmup:
                # alternate, so every warm-up request pairs with a neighbour of the other mode
                mode = est.samples[True] <= est.samples[False]
                return Decision(mode, f"measuring {'speculative' if mode else 'plain'}")
            tokens, ratio, gain = est.tokens_per_step(), est.cost_ratio(), est.gain()
            error = est.gain_error()
            plausible = True
            if gain is not None and tokens is not None:
                margin = CONFIDENCE * error
                # the cost ratio is at least 1, so the gain is at most the tokens per step
                upper = min(gain + margin, tokens)
                if est.speculating is None:  # first decision: the point estimate
                    est.speculating = gain >= LEAVE_GAIN
                elif est.speculating and upper < LEAVE_GAIN:
                    est.speculating = False
                elif not est.speculating and gain >= ENTER_GAIN and gain - margin >= 1.0:
                    est.speculating = True
                plausible = upper >= ENTER_GAIN
            speculating = bool(est.speculating)
            why = (
                f"predicted gain {gain:.2f} +- {error:.2f} = {tokens:.2f} "
                f"tokens/step / cost ratio {ratio:.2f}"
                if gain is not None and tokens is not None and ratio is not None
                else "no estimate yet"
            )
            every = self.probe_every
            if not speculating and plausible:
                every = min(every, EARLY_PROBE_EVERY)
            # While speculating on an engine whose requests measure their own plain steps,
            # speculative requests measure both E and r: a plain request would teach nothing.
            if est.decisions % every == 0 and not (speculating and est.measures_own_steps()):
                return Decision(not speculating, f"probing the other mode ({why})")
            label = "speculative" if speculating else "plain"
            return Decision(speculating, f"{label} ({why})")

    def observe(self, engine_id: str, completion: Completion) -> None:
        metrics = completion.metrics
        steps = metrics.num_steps
        if steps < 1:
            return  # no decode step (one-token request, or an engine that does not count)
        spec = completion.speculative
        seconds = metrics.wall_time_s - metrics.prefill_time_s
        own = draft_step_cost(metrics) if spec else None
        with self._lock:
            est = self._engines.setdefault(engine_id, _Estimate())
            est.samples[spec] += 1
            if spec:
                est.spec_counts.append(
                    (steps + metrics.num_accepted_tokens, steps, metrics.num_drafts)
                )
            if own is not None:
                est.draft_step_costs.append(own)
            if seconds > 0:
                est.add_step_time(spec, seconds / steps)

    def describe(self) -> dict[str, object]:
        with self._lock:
            measured = {
                engine: {
                    "speculating": est.speculating,
                    "tokens_per_step": est.tokens_per_step(),
                    "cost_ratio": est.cost_ratio(),
                    "cost_ratio_from": (
                        "own plain steps" if est.measures_own_steps() else "neighbouring requests"
                    ),
                    "gain": est.gain(),
                    "samples": {"speculative": est.samples[True], "plain": est.samples[False]},
                }
                for engine, est in self._engines.items()
            }
        return {
            "name": self.name,
            "max_batch": self.max_batch,
            "warmup": self.warmup,
            "probe_every": self.probe_every,
            "enter_gain": ENTER_GAIN,
            "leave_gain": LEAVE_GAIN,
            "measured": measured,
        }


PolicyFactory = Callable[[], SchedulingPolicy]

BUILTIN_POLICIES: Mapping[str, PolicyFactory] = {
    "always": AlwaysPolicy,
    "never": NeverPolicy,
    "adaptive": AdaptivePolicy,
}


def make_policy(
    policy: SchedulingPolicy | str, extra: Mapping[str, PolicyFactory] | None = None
) -> SchedulingPolicy:
    """A policy instance from an instance or a name (built-in or registered by a plugin)."""
    if isinstance(policy, SchedulingPolicy):
        return policy
    known = {**BUILTIN_POLICIES, **(extra or {})}
    factory = known.get(policy) if isinstance(policy, str) else None
    if factory is None:
        raise UnknownPolicyError(
            f"unknown scheduling policy {policy!r}; known policies: {', '.join(sorted(known))}."
        )
    return factory()
