"""Which exceptions end an engine, and which end only the request that raised them.

A backend serving one request can meet an exception nobody planned for: a tokenizer that
rejects an input, a bug in a strategy, a template that fails. Ending the engine for it would
let one request take every later one down with it (503 until a restart), so backends fail
that request alone (:func:`request_error`) and go on. Only an engine-fatal exception
(:func:`is_engine_fatal`) ends the engine, and the control plane's failure and restart path
takes over.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sage.llm.control_plane.errors import (
    ControlPlaneError,
    InvalidRequestError,
    RequestFailedError,
)

if TYPE_CHECKING:
    from sage.llm.control_plane.requests import RequestHandle

log = logging.getLogger("sage.llm.control_plane")

FATAL_CLASS_NAMES = frozenset(
    {
        # torch.OutOfMemoryError (torch.cuda.OutOfMemoryError): the device is out of memory;
        # its allocator is fragmented and the next request would likely fail the same way.
        # A restart frees it.
        "OutOfMemoryError",
        # torch.AcceleratorError: a CUDA/XPU error (device-side assert, illegal address). The
        # device context is unusable after it: every later kernel launch fails.
        "AcceleratorError",
        # vLLM's EngineCore process died: nothing in this process can serve again.
        "EngineDeadError",
    }
)

FATAL_MESSAGES = (
    # Older torch raises device faults as a plain RuntimeError; the message is what says so.
    "CUDA error",
    "CUDA out of memory",
    "device-side assert",
    "CUBLAS_STATUS",
    "CUDNN_STATUS",
    "cuDNN error",
    "HIP error",
    "NCCL error",
    "XPU error",
)


def is_engine_fatal(exc: BaseException) -> bool:
    """Whether ``exc`` means the engine itself can no longer serve (restart it), rather than
    one request having failed. Fatal:

    * anything that is not an ``Exception`` (``KeyboardInterrupt``, ``SystemExit``): the
      process is being stopped;
    * ``MemoryError``: the host is out of memory; the process is in no state to go on;
    * device out of memory, device (CUDA/HIP/XPU) errors, NCCL errors: the accelerator's
      context is broken or exhausted for every request, not just this one
      (:data:`FATAL_CLASS_NAMES`, :data:`FATAL_MESSAGES`);
    * vLLM's ``EngineDeadError``: its engine process is gone.

    Matched by class name and message, so neither torch nor vLLM is imported to decide.
    """
    if not isinstance(exc, Exception) or isinstance(exc, MemoryError):
        return True
    if any(cls.__name__ in FATAL_CLASS_NAMES for cls in type(exc).__mro__):
        return True
    message = str(exc)
    return isinstance(exc, RuntimeError) and any(m in message for m in FATAL_MESSAGES)


def request_error(handle: RequestHandle, exc: Exception) -> ControlPlaneError:
    """The error that ends ``handle`` alone for ``exc`` (which is not engine-fatal).

    The control plane's own errors pass as they are; vLLM's client errors and ``ValueError``
    (the engines' parameter checks) are a 400; anything else is a bug or a fault of the model
    code, logged here with its traceback and answered with a generic 500 that points to the
    log, never the traceback.
    """
    if isinstance(exc, ControlPlaneError):
        return exc
    error: ControlPlaneError
    if any(cls.__name__ == "VLLMClientError" for cls in type(exc).__mro__):
        error = InvalidRequestError(str(exc), getattr(exc, "parameter", None))
    elif isinstance(exc, ValueError):
        error = InvalidRequestError(str(exc))
    else:
        log.error(
            "request %s failed on engine %s; the engine goes on",
            handle.id,
            handle.engine_id,
            exc_info=exc,
        )
        error = RequestFailedError(
            f"request {handle.id} failed inside the engine ({type(exc).__name__}); the engine "
            "goes on. See the server log."
        )
    error.__cause__ = exc
    return error
