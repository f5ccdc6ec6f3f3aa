"""Scheduling policies: whether a request runs with speculation, decided per engine from load.

Speculation buys latency with extra compute: each step verifies ``k`` proposed tokens, and a
rejected token is compute thrown away. With spare compute (a small batch) that trade wins;
when the batch already keeps the hardware busy, the verify work displaces other requests'
tokens and throughput falls (vLLM measured up to 2.8x faster at low request rates and
1.4x-1.8x slower at high rates). A policy sees an engine's load and its measured goodput
and answers with a :class:`Decision`.

- ``always``: speculate whenever the engine has a strategy.
- ``never``: plain decoding (the strategy stays configured, unused).
- ``adaptive``: off when the batch is too large to profit (batching engines); otherwise the
  mode with the higher measured decode rate (tokens/s after the first token: it includes the
  acceptance rate and the verify cost), trying each mode a few times first and re-checking
  the other one now and then, because acceptance drifts with the traffic.

Both modes are lossless, so a switch changes speed only, never a token; a decision applies to
whole requests, so no request is dropped or restarted by a switch. A third-party policy is a
:class:`SchedulingPolicy` subclass registered through the ``register_scheduling_policies``
hook (see :mod:`sage.llm.control_plane.hooks`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from sage.llm.control_plane.errors import UnknownPolicyError
from sage.llm.control_plane.states import Capabilities

if TYPE_CHECKING:
    from sage.llm.control_plane.requests import Completion


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


@dataclass
class _Arm:
    """Measured decode rate of one mode on one engine (exponentially weighted)."""

    rate: float = 0.0
    samples: int = 0

    def add(self, value: float, alpha: float) -> None:
        self.rate = value if self.samples == 0 else (1 - alpha) * self.rate + alpha * value
        self.samples += 1


class AdaptivePolicy(SchedulingPolicy):
    """Speculate when load leaves room and measurement says it pays; see the module docstring.

    ``max_batch``: on a batching engine, speculation is off from this many requests in the
    engine (running + queued). ``warmup``: requests measured in each mode before exploiting.
    ``probe_every``: one request in this many runs in the currently worse mode, so a change
    in acceptance is noticed. ``alpha``: weight of the newest measurement.
    """

    name = "adaptive"

    def __init__(
        self, max_batch: int = 4, warmup: int = 2, probe_every: int = 20, alpha: float = 0.3
    ) -> None:
        if max_batch < 1 or warmup < 1 or probe_every < 2 or not 0 < alpha <= 1:
            raise ValueError(
                "adaptive policy: max_batch >= 1, warmup >= 1, probe_every >= 2 and "
                f"0 < alpha <= 1 are required (got {max_batch}, {warmup}, {probe_every}, "
                f"{alpha})."
            )
        self.max_batch = max_batch
        self.warmup = warmup
        self.probe_every = probe_every
        self.alpha = alpha
        self._lock = threading.Lock()
        self._arms: dict[str, dict[bool, _Arm]] = {}
        self._decisions: dict[str, int] = {}

    def decide(self, view: LoadView) -> Decision:
        if not view.has_strategy:
            return Decision(False, "the engine has no strategy")
        load = view.running + view.queue_depth
        if view.capabilities.batching and load >= self.max_batch:
            return Decision(False, f"batch {load} >= {self.max_batch}: verify work would crowd out")
        with self._lock:
            arms = self._arms.setdefault(view.engine_id, {True: _Arm(), False: _Arm()})
            count = self._decisions[view.engine_id] = self._decisions.get(view.engine_id, 0) + 1
            for mode in (True, False):
                if arms[mode].samples < self.warmup:
                    return Decision(mode, f"measuring {'speculative' if mode else 'plain'}")
            better = arms[True].rate >= arms[False].rate
            rates = f"{arms[True].rate:.1f} vs {arms[False].rate:.1f} tokens/s"
            if count % self.probe_every == 0:
                return Decision(not better, f"probing the other mode ({rates})")
            return Decision(better, f"{'speculative' if better else 'plain'} is faster ({rates})")

    def observe(self, engine_id: str, completion: Completion) -> None:
        metrics = completion.metrics
        seconds = metrics.wall_time_s - metrics.prefill_time_s
        tokens = metrics.num_generated_tokens - 1
        if tokens < 1 or seconds <= 0:
            return  # nothing after the first token: says nothing about decoding speed
        with self._lock:
            arms = self._arms.setdefault(engine_id, {True: _Arm(), False: _Arm()})
            arms[completion.speculative].add(tokens / seconds, self.alpha)

    def describe(self) -> dict[str, object]:
        with self._lock:
            rates = {
                engine: {
                    "speculative_tokens_per_s": arms[True].rate,
                    "plain_tokens_per_s": arms[False].rate,
                    "samples": {"speculative": arms[True].samples, "plain": arms[False].samples},
                }
                for engine, arms in self._arms.items()
            }
        return {
            "name": self.name,
            "max_batch": self.max_batch,
            "warmup": self.warmup,
            "probe_every": self.probe_every,
            "measured": rates,
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
