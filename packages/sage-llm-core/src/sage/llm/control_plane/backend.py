"""The contract between the control plane and an engine kind, and the single-stream loop.

A backend owns the model; the control plane owns queues, states, policies and metrics and
talks to it only through :class:`WorkerContext`. That split keeps the control plane free of
model state (several control-plane processes can front the same kind of engines behind a
load balancer) and makes a new engine kind one class: ``load``, ``run``, ``close``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from sage.llm.control_plane.errors import (
    ControlPlaneError,
    EngineStoppedError,
    NotSupportedError,
    RequestCancelledError,
    RequestTimeoutError,
)
from sage.llm.control_plane.states import Capabilities

if TYPE_CHECKING:
    from sage.llm.control_plane.policies import Decision
    from sage.llm.control_plane.requests import (
        Completion,
        GenerationRequest,
        Message,
        RequestHandle,
    )
    from sage.llm.strategy import SpeculativeStrategy


class WorkerContext(Protocol):
    """What the managed engine offers its backend's worker loop."""

    engine_id: str
    model_name: str

    def next_request(self, block: bool = True) -> RequestHandle | None:
        """The next live request (now running), or None: nothing queued (``block=False``),
        or the engine is stopping and has nothing left to serve."""

    def decide(self, running: int) -> Decision:
        """The scheduling policy's decision for the next request."""

    def complete(self, handle: RequestHandle, completion: Completion, generation_s: float) -> None:
        """Record and deliver a finished request."""

    def fail_request(self, handle: RequestHandle, error: ControlPlaneError) -> None:
        """Fail one request; the engine goes on."""

    def interrupted(self, handle: RequestHandle) -> ControlPlaneError | None:
        """Why a running request must stop now (cancelled, timed out, engine stopping)."""


class EngineBackend:
    """Base class of engine kinds. ``options`` are the ``**engine_options`` of
    ``start_engine``, passed through; each kind documents the ones it reads."""

    kind: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities(False, False, False)

    def __init__(
        self,
        model_id: str,
        strategy: SpeculativeStrategy | None,
        options: dict[str, Any],
        speculate_at_start: bool = True,
    ) -> None:
        self.model_id = model_id
        self.strategy = strategy
        self.options = dict(options)
        self.speculate_at_start = speculate_at_start
        """For engines that cannot switch per request: whether to configure speculation."""

    def load(self) -> None:
        """Load the model (slow); raise on failure with a message that says why."""
        raise NotImplementedError

    def check_request(self, request: GenerationRequest) -> list[int] | None:
        """Refuse what this model cannot serve, before the request is queued: raise
        :class:`~sage.llm.control_plane.errors.InvalidRequestError` naming the field (a token
        id outside the vocabulary, a prompt plus ``max_tokens`` beyond the context, messages
        for a model without a chat template). See :mod:`sage.llm.control_plane.validation`.

        Called in the submitting thread once the engine is ready, so a refusal reaches the
        caller (and an HTTP client, before any byte of a stream) without touching the
        engine's thread. Returns the prompt's token ids when the check computed them (the
        worker then finds them on ``handle.prompt_ids``), or None. The default accepts all.
        """
        return None

    def run(self, ctx: WorkerContext) -> None:
        """Serve requests until ``ctx.next_request`` returns None. An exception here means the
        engine died: the control plane fails every request it holds and may restart it. So
        an error of one request must end that request alone
        (:func:`~sage.llm.control_plane.faults.request_error`); only an engine-fatal one
        (:func:`~sage.llm.control_plane.faults.is_engine_fatal`) may leave ``run``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the model (called after ``run`` returns or raises, and on a failed load)."""

    def describe(self) -> dict[str, Any]:
        return {}

    # -- optional: tokenizing (``/tokenize``, ``/detokenize``) ---------------------------

    def hf_tokenizer(self) -> Any:
        """The loaded model's Hugging Face tokenizer, or None. A kind that returns one gets
        :meth:`tokenize` and :meth:`detokenize` for free; one without overrides those."""
        return None

    def tokenize(
        self,
        *,
        prompt: str | None = None,
        messages: Sequence[Message] | None = None,
        add_special_tokens: bool | None = None,
        add_generation_prompt: bool = True,
    ) -> list[int]:
        """The token ids this engine would feed its model for ``prompt`` (as the completions
        route) or ``messages`` (as the chat route); see :mod:`.tokenizing`."""
        from sage.llm.control_plane import tokenizing

        return tokenizing.tokenize(
            self._tokenizer_or_raise(),
            prompt=prompt,
            messages=messages,
            add_special_tokens=add_special_tokens,
            add_generation_prompt=add_generation_prompt,
            model_name=self.model_id,
        )

    def detokenize(self, token_ids: Sequence[int]) -> str:
        """The text of ``token_ids`` (an id outside the vocabulary: InvalidRequestError)."""
        from sage.llm.control_plane import tokenizing

        return tokenizing.detokenize(self._tokenizer_or_raise(), token_ids)

    def max_model_len(self) -> int | None:
        """The longest sequence (prompt and output) the model takes, when known."""
        return None

    def _tokenizer_or_raise(self) -> Any:
        tokenizer = self.hf_tokenizer()
        if tokenizer is None:
            raise NotSupportedError(
                f"the {self.kind or type(self).__name__} engine serving {self.model_id!r} "
                "does not tokenize over HTTP; tokenize on the client with the model's tokenizer."
            )
        return tokenizer


class Interrupted(Exception):
    """Raised inside a generation callback to stop a request (cancel, timeout, stop)."""

    def __init__(self, error: ControlPlaneError) -> None:
        super().__init__(str(error))
        self.error = error


def interruption(handle: RequestHandle, stopping: bool) -> ControlPlaneError | None:
    """The shared rule for when a running request must stop, and with which error."""
    if handle.cancelled:
        return RequestCancelledError(f"request {handle.id} was cancelled.")
    if handle.expired():
        return RequestTimeoutError(f"request {handle.id} exceeded its timeout.")
    if stopping:
        return EngineStoppedError(
            f"engine {handle.engine_id} was stopped without draining while request "
            f"{handle.id} ran; retry on another engine."
        )
    return None
