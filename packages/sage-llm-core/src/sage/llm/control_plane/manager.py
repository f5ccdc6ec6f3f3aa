"""``ControlPlaneManager``: start engines with strategies, route requests, report metrics.

::

    from sage.llm.control_plane import ControlPlaneManager
    from sage.llm import NgramStrategy

    cp = ControlPlaneManager(scheduling_policy="adaptive")
    engine_id = cp.start_engine(model_id="qwen2.5-coder-0.5b-instruct",
                                speculative_strategy=NgramStrategy(n=5))
    print(cp.generate(prompt="def fib(n):", max_tokens=64).text)
    cp.shutdown()

The manager holds no model state of its own: engines own their models, the manager owns
queues, policies and numbers. Importing it loads neither torch nor any server library.
"""

from __future__ import annotations

import atexit
import itertools
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sage.llm.control_plane.backend import EngineBackend
from sage.llm.control_plane.engine import ManagedEngine
from sage.llm.control_plane.errors import (
    EngineNotFoundError,
    EngineUnavailableError,
    InvalidRequestError,
)
from sage.llm.control_plane.hooks import ControlPlanePlugins
from sage.llm.control_plane.policies import AdaptivePolicy, SchedulingPolicy, make_policy
from sage.llm.control_plane.requests import Completion, GenerationRequest, RequestHandle
from sage.llm.control_plane.states import EngineState, RestartPolicy
from sage.llm.errors import InvalidParameterError
from sage.llm.registry import STRATEGY_ARGUMENT, resolve_optional_strategy
from sage.llm.strategy import SpeculativeStrategy

ENGINE_KINDS = ("transformers", "vllm")
EXIT_STOP_S = 10.0
"""At interpreter exit, how long the engines of managers nobody shut down get to stop."""

_live_managers: weakref.WeakSet[ControlPlaneManager] = weakref.WeakSet()


def _stop_engines_at_exit() -> None:
    """Stop the engines of every manager still alive, without draining, before Python
    finalizes.

    Why: engine threads are daemons (a forgotten manager must not keep the process alive), and
    a daemon thread still inside torch when the interpreter finalizes is torn down in the
    middle of a C++ call: the process aborts (exit 134, "terminate called without an active
    exception") instead of exiting with its own code. Stopping sets each engine's abort flag,
    which its worker checks between steps, and joins the worker for at most
    :data:`EXIT_STOP_S` in all.
    """
    deadline = time.monotonic() + EXIT_STOP_S
    for manager in list(_live_managers):
        manager._stop_at_exit(deadline)


def _run_exit_hook_first() -> None:
    """(Re-)register the exit hook: atexit runs hooks last-registered first, so this puts it
    ahead of hooks that libraries loaded since (torch's) registered, while they still work."""
    atexit.unregister(_stop_engines_at_exit)
    atexit.register(_stop_engines_at_exit)


def backend_class(engine: str | type[EngineBackend]) -> type[EngineBackend]:
    """The backend class of an engine kind name (or a custom :class:`EngineBackend` subclass)."""
    if isinstance(engine, type) and issubclass(engine, EngineBackend):
        return engine
    if engine == "transformers":
        from sage.llm.control_plane.transformers_backend import TransformersBackend

        return TransformersBackend
    if engine == "vllm":
        from sage.llm.control_plane.vllm_backend import VLLMBackend

        return VLLMBackend
    raise InvalidRequestError(
        f"unknown engine {engine!r}; use one of {', '.join(ENGINE_KINDS)} or pass an "
        "EngineBackend subclass.",
        "engine",
    )


def resolve_strategy(strategy: SpeculativeStrategy | str | None) -> SpeculativeStrategy | None:
    """A strategy object from an object, a string (``"ngram:n=5"``) or ``None``/``"none"``.

    The registry's one reading (:func:`~sage.llm.registry.resolve_optional_strategy`); a value
    that is no strategy at all is the request's mistake here (HTTP 400), with its message.
    """
    try:
        return resolve_optional_strategy(strategy)
    except InvalidParameterError as exc:
        if exc.parameter != STRATEGY_ARGUMENT:
            raise
        raise InvalidRequestError(str(exc), STRATEGY_ARGUMENT) from exc


def _factory(
    cls: type[EngineBackend],
    model_id: str,
    strategy: SpeculativeStrategy | None,
    options: dict[str, Any],
    policy: SchedulingPolicy,
) -> Callable[[bool], EngineBackend]:
    def build(speculate: bool) -> EngineBackend:
        backend = cls(model_id, strategy, options, speculate)
        if isinstance(policy, AdaptivePolicy) and hasattr(backend, "max_batch_for_speculation"):
            backend.max_batch_for_speculation = policy.max_batch  # vLLM's own load switch
        return backend

    return build


class ControlPlaneManager:
    """Engines, their queues and the scheduling policy; see the module docstring.

    ``scheduling_policy``: ``"always"``, ``"never"``, ``"adaptive"``, a plugin's policy name or
    a :class:`SchedulingPolicy`. ``max_queue``: requests waiting per engine before
    :class:`~sage.llm.control_plane.errors.OverloadedError`. ``request_timeout_s``: default
    total time per request. ``restart_policy``: ``"never"``, ``"on-failure"`` or
    ``"on-failure:N"``. ``plugins``: control-plane plugin objects (observers, exporters,
    policies), which raise :class:`~sage.llm.control_plane.hooks.ControlPlanePluginError` at
    once when they do not match the hooks; installed entry-point plugins load too unless
    ``load_entry_points=False``, and a broken one is logged, listed in ``status()`` and skipped.
    """

    def __init__(
        self,
        scheduling_policy: SchedulingPolicy | str = "adaptive",
        *,
        max_queue: int = 64,
        request_timeout_s: float | None = None,
        restart_policy: RestartPolicy | str | None = None,
        plugins: Iterable[Any] = (),
        load_entry_points: bool = True,
    ) -> None:
        if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
            raise InvalidRequestError(f"max_queue must be an integer >= 1, got {max_queue!r}.")
        self.plugins = ControlPlanePlugins(list(plugins), load_entry_points=load_entry_points)
        self._policy_factories = self.plugins.policies()
        self.policy = make_policy(scheduling_policy, self._policy_factories)
        self.max_queue = max_queue
        self.request_timeout_s = request_timeout_s
        self.restart_policy = RestartPolicy.parse(restart_policy)
        self._engines: dict[str, ManagedEngine] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._closed = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="sage-llm-reaper", daemon=True)
        self._reaper.start()
        self._prometheus: Any = None
        _live_managers.add(self)

    # -- engines ------------------------------------------------------------------------

    def start_engine(
        self,
        model_id: str,
        speculative_strategy: SpeculativeStrategy | str | None = None,
        engine: str | type[EngineBackend] = "transformers",
        *,
        engine_id: str | None = None,
        served_model_name: str | None = None,
        scheduling_policy: SchedulingPolicy | str | None = None,
        max_queue: int | None = None,
        wait: bool = True,
        **engine_options: Any,
    ) -> str:
        """Start an engine and return its id once it is ready (``wait=False``: at once).

        ``engine_options`` go to the engine kind (see its backend's docstring); for vLLM that
        includes ``tensor_parallel_size``, ``pipeline_parallel_size`` and any ``vllm.LLM``
        argument such as ``distributed_executor_backend="ray"``. A start failure raises
        :class:`~sage.llm.control_plane.errors.EngineStartError` with the cause chained; the
        engine stays listed as ``failed`` so ``engine_info`` shows why.
        """
        if not isinstance(model_id, str) or not model_id.strip():
            raise InvalidRequestError("model_id must name a model.", "model_id")
        cls = backend_class(engine)
        strategy = resolve_strategy(speculative_strategy)
        policy = (
            make_policy(scheduling_policy, self._policy_factories)
            if scheduling_policy is not None
            else self.policy
        )
        options = dict(engine_options)
        cls(model_id, strategy, options)  # option checks now, in the caller's thread
        with self._lock:
            eid = engine_id or f"engine-{next(self._ids)}"
            if eid in self._engines and self._engines[eid].state not in (
                EngineState.STOPPED,
                EngineState.FAILED,
            ):
                raise InvalidRequestError(f"engine id {eid!r} is in use.", "engine_id")
            managed = ManagedEngine(
                engine_id=eid,
                model_id=model_id,
                model_name=served_model_name or model_id,
                kind=cls.kind or cls.__name__,
                backend_class=cls,
                backend_factory=_factory(cls, model_id, strategy, options, policy),
                strategy=strategy,
                policy=policy,
                plugins=self.plugins,
                manager=self,
                max_queue=max_queue or self.max_queue,
                restart=self.restart_policy,
                default_timeout_s=self.request_timeout_s,
            )
            self._engines[eid] = managed
        _run_exit_hook_first()
        try:
            managed.start(wait=wait)
        finally:
            _run_exit_hook_first()  # after the backend imported its libraries
        return eid

    def stop_engine(
        self, engine_id: str, *, drain: bool = True, timeout: float | None = None
    ) -> None:
        """Stop an engine: finish its requests (``drain``) or fail them, then free its model."""
        self._engine(engine_id).stop(drain=drain, timeout=timeout)

    def list_engines(self) -> list[dict[str, Any]]:
        return [e.info() for e in self._snapshot()]

    def engine_info(self, engine_id: str) -> dict[str, Any]:
        engine = self._engine(engine_id)
        return {**engine.info(), "metrics": engine.stats.snapshot()}

    def models(self) -> list[str]:
        """Model names served by at least one ready engine."""
        names = {e.model_name for e in self._snapshot() if e.state is EngineState.READY}
        return sorted(names)

    # -- requests -----------------------------------------------------------------------

    def submit(
        self,
        request: GenerationRequest | None = None,
        *,
        engine_id: str | None = None,
        model: str | None = None,
        **params: Any,
    ) -> RequestHandle:
        """Queue a request on ``engine_id``, or on the least loaded ready engine serving
        ``model`` (or any ready engine when neither is given). ``params`` are the fields of
        :class:`GenerationRequest` (``prompt=...``, ``max_tokens=...``)."""
        if request is None:
            request = GenerationRequest(**params)
        elif params:
            raise InvalidRequestError("pass a GenerationRequest or its fields, not both.")
        return self.route(engine_id, model).submit(request)

    def generate(
        self, *, engine_id: str | None = None, model: str | None = None, **params: Any
    ) -> Completion:
        """Submit and wait: the completion, or the request's error."""
        return self.submit(engine_id=engine_id, model=model, **params).result()

    def route(self, engine_id: str | None, model: str | None) -> ManagedEngine:
        if engine_id is not None:
            return self._engine(engine_id)
        candidates = [
            e
            for e in self._snapshot()
            if model is None or e.model_name == model or e.model_id == model
        ]
        if not candidates:
            served = ", ".join(sorted({e.model_name for e in self._snapshot()})) or "none"
            raise EngineNotFoundError(f"no engine serves model {model!r}; served models: {served}.")
        ready = [e for e in candidates if e.state is EngineState.READY]
        if not ready:
            states = ", ".join(f"{e.engine_id} {e.state.value}" for e in candidates)
            raise EngineUnavailableError(f"no ready engine for model {model!r} ({states}).")
        return min(ready, key=lambda e: e.queue_depth + e.running)

    # -- metrics ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Every engine's info and metrics, the policy's own view, and the control-plane
        plugins that loaded or failed to (JSON-ready)."""
        return {
            "policy": self.policy.describe(),
            "engines": [self.engine_info(e.engine_id) for e in self._snapshot()],
            "plugins": self.plugins.describe(),
        }

    def prometheus_text(self) -> bytes:
        """The metrics in Prometheus' text format (needs ``sage-llm-core[serve]``)."""
        from sage.llm.control_plane.prometheus import exposition

        if self._prometheus is None:
            from sage.llm.control_plane.prometheus import registry_for

            self._prometheus = registry_for(self)
        return exposition(self._prometheus)

    # -- shutdown -----------------------------------------------------------------------

    def shutdown(
        self, *, drain: bool = False, timeout: float | None = 30.0, reason: str | None = None
    ) -> None:
        """Stop every engine (failing their requests unless ``drain``; ``reason``, when set,
        is what their errors say about why, e.g. that the server is shutting down).

        Call it when done: a manager still running at interpreter exit has its engines
        stopped by an exit hook, without draining."""
        for engine in self._snapshot():
            if engine.state is not EngineState.STOPPED:
                engine.stop(drain=drain, timeout=timeout, reason=reason)
        self._closed.set()

    def _stop_at_exit(self, deadline: float) -> None:
        for engine in self._snapshot():
            if engine.state is not EngineState.STOPPED:
                engine.stop(
                    drain=False,
                    timeout=max(0.0, deadline - time.monotonic()),
                    reason="the Python interpreter is exiting.",
                )
        self._closed.set()

    def __enter__(self) -> ControlPlaneManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    # -- internals ----------------------------------------------------------------------

    def engines(self) -> Mapping[str, ManagedEngine]:
        with self._lock:
            return dict(self._engines)

    def _snapshot(self) -> list[ManagedEngine]:
        with self._lock:
            return list(self._engines.values())

    def _engine(self, engine_id: str) -> ManagedEngine:
        with self._lock:
            engine = self._engines.get(engine_id)
        if engine is None:
            raise EngineNotFoundError(
                f"no engine {engine_id!r}; engines: {', '.join(self._engines) or 'none'}."
            )
        return engine

    def _reap(self) -> None:
        """Time out queued requests even while their engine is busy with a long one."""
        while not self._closed.wait(0.05):
            now = time.monotonic()
            for engine in self._snapshot():
                engine.expire_queued(now)
