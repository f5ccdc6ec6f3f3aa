"""Errors of the control plane, each mapped to one HTTP status by the server.

A request that fails gets exactly one of these (never a hang): the caller can tell a bad
request (fix it), an overloaded engine (retry later), a timeout, a cancellation and an engine
that failed or was stopped apart by the class alone.
"""

from __future__ import annotations

from sage.llm.errors import SageLLMError


class ControlPlaneError(SageLLMError):
    """Base class of the control plane's errors; ``status`` is the HTTP status it maps to."""

    status = 500
    code = "internal_error"


class InvalidRequestError(ControlPlaneError, ValueError):
    """A request parameter is missing or out of range (the message names it)."""

    status = 400
    code = "invalid_request"

    def __init__(self, message: str, param: str | None = None) -> None:
        self.param = param
        super().__init__(message)


class EngineNotFoundError(ControlPlaneError, LookupError):
    """No engine has this id, or no engine serves this model name."""

    status = 404
    code = "not_found"


class EngineStartError(ControlPlaneError):
    """An engine could not start; the cause is chained and quoted in the message."""

    status = 500
    code = "engine_start_failed"


class EngineUnavailableError(ControlPlaneError):
    """The engine exists but takes no requests now (starting, draining, stopped or failed)."""

    status = 503
    code = "engine_unavailable"


class OverloadedError(ControlPlaneError):
    """The engine's queue is full; retry later or start another engine for this model."""

    status = 429
    code = "overloaded"


class RequestTimeoutError(ControlPlaneError, TimeoutError):
    """The request did not finish within its timeout (queued time included)."""

    status = 408
    code = "timeout"


class RequestCancelledError(ControlPlaneError):
    """The request was cancelled (by the caller, or its client disconnected)."""

    status = 499
    code = "cancelled"


class EngineFailedError(ControlPlaneError):
    """The engine died while the request was queued or running; the cause is chained."""

    status = 503
    code = "engine_failed"


class EngineStoppedError(ControlPlaneError):
    """The engine was stopped without draining while the request was queued or running."""

    status = 503
    code = "engine_stopped"


class RequestFailedError(ControlPlaneError):
    """The request failed inside the engine on an unexpected error; the engine goes on (the
    server log has the traceback)."""

    status = 500
    code = "internal_error"


class UnknownPolicyError(ControlPlaneError, LookupError):
    """No scheduling policy has this name (the message lists the known ones)."""

    status = 400
    code = "invalid_request"


class NotSupportedError(ControlPlaneError):
    """The engine kind does not offer this operation (tokenizing, say); the message says
    which engine and what to use instead."""

    status = 501
    code = "not_implemented"
