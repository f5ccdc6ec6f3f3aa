"""A managed engine: its state, its bounded queue, its worker thread and its restarts.

The worker thread loads the backend, then runs the backend's loop, which pulls requests
through :meth:`ManagedEngine.next_request`. Everything that can end a request (completion,
cancellation, timeout, engine failure, stop) goes through the handle's finish-once rule, so a
request ends exactly once whatever races.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sage.llm.control_plane.backend import EngineBackend, interruption
from sage.llm.control_plane.errors import (
    ControlPlaneError,
    EngineFailedError,
    EngineStartError,
    EngineStoppedError,
    EngineUnavailableError,
    OverloadedError,
    RequestCancelledError,
    RequestTimeoutError,
)
from sage.llm.control_plane.faults import is_engine_fatal, request_error
from sage.llm.control_plane.policies import Decision, LoadView
from sage.llm.control_plane.requests import Completion, GenerationRequest, RequestHandle
from sage.llm.control_plane.states import EngineState, RestartPolicy
from sage.llm.control_plane.stats import EngineStats

if TYPE_CHECKING:
    from sage.llm.control_plane.hooks import ControlPlanePlugins
    from sage.llm.control_plane.policies import SchedulingPolicy
    from sage.llm.strategy import SpeculativeStrategy

log = logging.getLogger("sage.llm.control_plane")

BackendFactory = Callable[[bool], EngineBackend]
"""Builds a fresh backend (for the first start and for each restart); the argument says
whether an engine that cannot switch per request should configure speculation."""

OUTCOME_OF = {RequestCancelledError: "cancelled", RequestTimeoutError: "timeout"}


class ManagedEngine:
    """One engine under the control plane (see the module docstring)."""

    def __init__(
        self,
        *,
        engine_id: str,
        model_id: str,
        model_name: str,
        kind: str,
        backend_class: type[EngineBackend],
        backend_factory: BackendFactory,
        strategy: SpeculativeStrategy | None,
        policy: SchedulingPolicy,
        plugins: ControlPlanePlugins,
        manager: Any,
        max_queue: int,
        restart: RestartPolicy,
        default_timeout_s: float | None,
    ) -> None:
        self.engine_id = engine_id
        self.model_id = model_id
        self.model_name = model_name
        self.kind = kind
        self.backend_class = backend_class
        self._factory = backend_factory
        self.strategy = strategy
        self.policy = policy
        self.plugins = plugins
        self.manager = manager
        self.max_queue = max_queue
        self.restart = restart
        self.default_timeout_s = default_timeout_s
        self.stats = EngineStats()
        self.state = EngineState.STARTING
        self.error: str | None = None
        self.restarts = 0
        self.last_decision: Decision | None = None
        self.backend: EngineBackend | None = None
        self._cond = threading.Condition()
        self._queue: collections.deque[RequestHandle] = collections.deque()
        self._running: set[RequestHandle] = set()
        self._abort = False
        self._stop_reason: str | None = None
        self._loaded = threading.Event()
        self._start_error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._main, name=f"sage-llm-engine-{engine_id}", daemon=True
        )

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, wait: bool = True) -> None:
        self._thread.start()
        if wait:
            self._loaded.wait()
            if self._start_error is not None:
                cause = self._start_error
                raise EngineStartError(
                    f"engine {self.engine_id} ({self.kind}, model {self.model_id!r}) failed to "
                    f"start: {type(cause).__name__}: {cause}"
                ) from cause

    def stop(
        self, drain: bool = True, timeout: float | None = None, reason: str | None = None
    ) -> None:
        """Stop taking requests; with ``drain`` finish the queued and running ones first,
        without it fail them with :class:`EngineStoppedError` (whose message gives
        ``reason`` when set: why the engine stopped, what to do). Waits up to ``timeout``."""
        with self._cond:
            if self.state in (EngineState.STOPPED, EngineState.FAILED) and not self._alive():
                self.state = EngineState.STOPPED
                return
            self.state = EngineState.DRAINING
            if not drain:
                self._abort = True
                self._stop_reason = reason
                dropped = list(self._queue)
                self._queue.clear()
            else:
                dropped = []
            self._cond.notify_all()
        for handle in dropped:
            self._fail(handle, EngineStoppedError(self._stopped_message(handle)), "error")
        self._thread.join(timeout)

    def _alive(self) -> bool:
        return self._thread.is_alive()

    def _main(self) -> None:
        first = True
        while True:
            backend = None
            try:
                decision = self.policy.decide(self._view(0))
                backend = self._factory(decision.speculate)
                backend.load()
            except BaseException as exc:
                self._on_failure(exc, during_start=True)
                if backend is not None:
                    _close(backend)
                if first:
                    self._start_error = exc
                    self._loaded.set()
                    return
                if not self._may_restart():
                    return
                continue
            first = False
            with self._cond:
                self.backend = backend
                stopping = self.state is EngineState.DRAINING
                if not stopping:
                    self.state = EngineState.READY
                    self.error = None
            self._loaded.set()
            self.plugins.notify(
                "on_engine_started",
                manager=self.manager,
                engine_id=self.engine_id,
                info=self.info(),
            )
            try:
                backend.run(self)
            except BaseException as exc:
                _close(backend)
                self.backend = None
                self._on_failure(exc, during_start=False)
                if self._may_restart():
                    continue
                return
            _close(backend)
            with self._cond:
                self.backend = None
                self.state = EngineState.STOPPED
            self.plugins.notify(
                "on_engine_stopped",
                manager=self.manager,
                engine_id=self.engine_id,
                info=self.info(),
            )
            return

    def _may_restart(self) -> bool:
        with self._cond:
            allowed = (
                self.restart.mode == "on-failure"
                and self.restarts < self.restart.max_restarts
                and self.state is EngineState.FAILED
            )
            if allowed:
                self.restarts += 1
                self.state = EngineState.STARTING
        if allowed:
            log.warning("restarting engine %s (restart %d)", self.engine_id, self.restarts)
        return allowed

    def _on_failure(self, exc: BaseException, during_start: bool) -> None:
        what = "failed to start" if during_start else "died"
        message = f"engine {self.engine_id} ({self.model_id}) {what}: {type(exc).__name__}: {exc}"
        if not during_start:
            log.error("%s", message, exc_info=exc)
        with self._cond:
            self.state = EngineState.FAILED
            self.error = message
            victims = list(self._running) + list(self._queue)
            self._running.clear()
            self._queue.clear()
        self.plugins.notify(
            "on_engine_failed",
            manager=self.manager,
            engine_id=self.engine_id,
            info=self.info(),
            error=exc,
        )
        for handle in victims:
            error = EngineFailedError(f"{message}; request {handle.id} did not complete.")
            error.__cause__ = exc
            self._fail(handle, error, "error")

    # -- requests -----------------------------------------------------------------------

    def submit(self, request: GenerationRequest) -> RequestHandle:
        """Queue ``request`` once the backend has checked it against the model
        (:meth:`EngineBackend.check_request`, in this thread: a refusal never reaches the
        engine's thread)."""
        timeout = request.timeout_s if request.timeout_s is not None else self.default_timeout_s
        handle = RequestHandle(request, self.engine_id, timeout)
        with self._cond:
            self._refuse_if_busy()
            backend = self.backend
        if backend is not None:
            handle.prompt_ids = _check_request(backend, handle)
        with self._cond:
            self._refuse_if_busy()  # again: the engine may have stopped while we checked
            handle.on_cancel = self._on_cancel
            self._queue.append(handle)
            self._cond.notify_all()
        return handle

    def _refuse_if_busy(self) -> None:
        """Raise when the engine takes no request now (not ready, or its queue is full)."""
        if self.state is not EngineState.READY:
            detail = f": {self.error}" if self.error else ""
            raise EngineUnavailableError(
                f"engine {self.engine_id} is {self.state.value}{detail}; it takes no requests."
            )
        if len(self._queue) >= self.max_queue:
            self.stats.record_outcome("rejected")
            raise OverloadedError(
                f"engine {self.engine_id} is overloaded: {len(self._queue)} requests queued "
                f"(max_queue={self.max_queue}); retry later or start another engine."
            )

    def _on_cancel(self, handle: RequestHandle) -> None:
        with self._cond:
            queued = handle.started_at is None and handle in self._queue
            if queued:
                self._queue.remove(handle)
        if queued:
            self._fail(
                handle, RequestCancelledError(f"request {handle.id} was cancelled."), "cancelled"
            )

    def next_request(self, block: bool = True) -> RequestHandle | None:
        with self._cond:
            while True:
                if self._abort:
                    return None
                while self._queue:
                    handle = self._queue.popleft()
                    if handle.ending:
                        continue  # cancelled (and failed) while queued
                    if handle.expired():
                        self._cond.release()
                        try:
                            self._fail(handle, _queued_timeout(handle), "timeout")
                        finally:
                            self._cond.acquire()
                        continue
                    handle.mark_started()
                    self._running.add(handle)
                    return handle
                if self.state is EngineState.DRAINING or not block:
                    return None
                self._cond.wait(0.5)

    def decide(self, running: int) -> Decision:
        decision = self.policy.decide(self._view(running))
        self.last_decision = decision
        self.plugins.notify(
            "on_policy_decision",
            manager=self.manager,
            engine_id=self.engine_id,
            decision=decision,
        )
        return decision

    def complete(self, handle: RequestHandle, completion: Completion, generation_s: float) -> None:
        with self._cond:
            self._running.discard(handle)
        if not handle.claim():
            return  # already ended (stopped, timed out): it was counted once, as that
        # Numbers and observers first, so a caller who has the result sees them counted.
        self.stats.record_completion(
            completion.strategy,
            completion.speculative,
            completion.metrics,
            generation_s,
            completion.queued_s,
            completion.ttft_s,
            completion.latency_s,
        )
        self.policy.observe(self.engine_id, completion)
        self.plugins.notify(
            "on_request_finished",
            manager=self.manager,
            engine_id=self.engine_id,
            completion=completion,
            outcome="ok",
        )
        handle.finish(completion, claimed=True)

    def fail_request(self, handle: RequestHandle, error: ControlPlaneError) -> None:
        with self._cond:
            self._running.discard(handle)
        self._fail(handle, error, OUTCOME_OF.get(type(error), "error"))

    def interrupted(self, handle: RequestHandle) -> ControlPlaneError | None:
        error = interruption(handle, self._abort)
        if isinstance(error, EngineStoppedError) and self._stop_reason is not None:
            return EngineStoppedError(f"request {handle.id} did not finish: {self._stop_reason}")
        return error

    def expire_queued(self, now: float) -> None:
        """Fail queued requests whose deadline passed (called by the manager's reaper)."""
        with self._cond:
            expired = [h for h in self._queue if h.expired(now)]
            for handle in expired:
                self._queue.remove(handle)
        for handle in expired:
            self._fail(handle, _queued_timeout(handle), "timeout")

    def _fail(self, handle: RequestHandle, error: ControlPlaneError, outcome: str) -> None:
        if handle.claim():
            self.stats.record_outcome(outcome)
            self.plugins.notify(
                "on_request_finished",
                manager=self.manager,
                engine_id=self.engine_id,
                completion=None,
                outcome=outcome,
            )
            handle.fail(error, claimed=True)

    def _stopped_message(self, handle: RequestHandle) -> str:
        if self._stop_reason is not None:
            return f"request {handle.id} did not run: {self._stop_reason}"
        return (
            f"engine {self.engine_id} was stopped without draining; request {handle.id} "
            "did not run. Retry on another engine."
        )

    # -- views --------------------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def running(self) -> int:
        return len(self._running)

    def _view(self, running: int) -> LoadView:
        return LoadView(
            engine_id=self.engine_id,
            engine_kind=self.kind,
            capabilities=self.backend_class.capabilities,
            has_strategy=self.strategy is not None,
            queue_depth=len(self._queue),
            running=running,
        )

    def _policy_state(self) -> dict[str, object]:
        """The policy's own view, narrowed to this engine where it measures several."""
        state = dict(self.policy.describe())
        measured = state.get("measured")
        if isinstance(measured, dict):
            state["measured"] = measured.get(self.engine_id)
        return state

    def info(self) -> dict[str, Any]:
        caps = self.backend_class.capabilities
        backend = self.backend
        return {
            "engine_id": self.engine_id,
            "model": self.model_name,
            "model_id": self.model_id,
            "engine": self.kind,
            "state": self.state.value,
            "error": self.error,
            "restarts": self.restarts,
            "strategy": self.strategy.to_string() if self.strategy is not None else None,
            "policy": self.policy.name,
            "policy_state": self._policy_state(),
            "last_decision": self.last_decision.to_json() if self.last_decision else None,
            "queue_depth": self.queue_depth,
            "running": self.running,
            "max_queue": self.max_queue,
            "capabilities": {
                "batching": caps.batching,
                "switch_per_request": caps.switch_per_request,
                "switch_k_per_request": caps.switch_k_per_request,
                "note": caps.note,
            },
            "backend": backend.describe() if backend is not None else {},
        }


def _queued_timeout(handle: RequestHandle) -> RequestTimeoutError:
    waited = time.monotonic() - handle.submitted_at
    return RequestTimeoutError(
        f"request {handle.id} timed out after {waited:.1f} s in the queue; the engine is busy."
    )


def _check_request(backend: EngineBackend, handle: RequestHandle) -> list[int] | None:
    """The backend's model checks; an unexpected error in them fails this request only."""
    try:
        return backend.check_request(handle.request)
    except ControlPlaneError:
        raise
    except Exception as exc:
        if is_engine_fatal(exc):
            raise
        raise request_error(handle, exc) from exc


def _close(backend: EngineBackend) -> None:
    try:
        backend.close()
    except Exception:
        log.exception("closing the %s backend failed", backend.kind)
