"""The control plane: engines with speculative strategies, request queues, load-driven policies.

::

    from sage.llm.control_plane import ControlPlaneManager
    from sage.llm import NgramStrategy

    cp = ControlPlaneManager(scheduling_policy="adaptive")
    engine_id = cp.start_engine(model_id="qwen2.5-coder-0.5b-instruct",
                                speculative_strategy=NgramStrategy(n=5))

Modules: :mod:`.manager` (the manager), :mod:`.engine` (one engine's state, queue and worker),
:mod:`.backend` (the engine-kind contract) with :mod:`.transformers_backend` and
:mod:`.vllm_backend`, :mod:`.requests` (requests, handles, completions), :mod:`.validation`
(what a request must satisfy), :mod:`.faults` (what ends an engine, what ends one request),
:mod:`.policies`, :mod:`.stats` and :mod:`.prometheus` (metrics), :mod:`.hooks` (plugins).
The HTTP server is :mod:`sage.llm.server`. Importing this package loads neither torch nor a
server library.
"""

from __future__ import annotations

from sage.llm.control_plane.backend import EngineBackend
from sage.llm.control_plane.errors import (
    ControlPlaneError,
    EngineFailedError,
    EngineNotFoundError,
    EngineStartError,
    EngineStoppedError,
    EngineUnavailableError,
    InvalidRequestError,
    OverloadedError,
    RequestCancelledError,
    RequestFailedError,
    RequestTimeoutError,
    UnknownPolicyError,
)
from sage.llm.control_plane.manager import ControlPlaneManager
from sage.llm.control_plane.policies import (
    AdaptivePolicy,
    AlwaysPolicy,
    Decision,
    LoadView,
    NeverPolicy,
    SchedulingPolicy,
)
from sage.llm.control_plane.requests import Completion, GenerationRequest, RequestHandle
from sage.llm.control_plane.states import Capabilities, EngineState, RestartPolicy

__all__ = [
    "AdaptivePolicy",
    "AlwaysPolicy",
    "Capabilities",
    "Completion",
    "ControlPlaneError",
    "ControlPlaneManager",
    "Decision",
    "EngineBackend",
    "EngineFailedError",
    "EngineNotFoundError",
    "EngineStartError",
    "EngineState",
    "EngineStoppedError",
    "EngineUnavailableError",
    "GenerationRequest",
    "InvalidRequestError",
    "LoadView",
    "NeverPolicy",
    "OverloadedError",
    "RequestCancelledError",
    "RequestFailedError",
    "RequestHandle",
    "RequestTimeoutError",
    "RestartPolicy",
    "SchedulingPolicy",
    "UnknownPolicyError",
]
