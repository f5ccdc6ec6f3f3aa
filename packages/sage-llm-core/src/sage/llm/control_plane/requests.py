"""One request's life: its parameters, its handle (result, stream, cancel) and its completion.

A :class:`RequestHandle` finishes exactly once, with a :class:`Completion` or an error; every
later attempt to finish it is ignored. That single rule is what makes "no lost or duplicated
completion" hold when an engine fails, is stopped or a client goes away at the same moment as
the request finishes.

Handles are thread-safe. Workers (threads) feed them; callers read them from threads
(:meth:`RequestHandle.result`, :meth:`RequestHandle.events`) or from asyncio
(:meth:`RequestHandle.aevents`) without blocking the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sage.llm.control_plane.errors import (
    ControlPlaneError,
    RequestCancelledError,
    RequestTimeoutError,
)
from sage.llm.control_plane.validation import check_fields
from sage.llm.metrics import SpecDecodeMetrics

Message = dict[str, str]
_ids = itertools.count(1)


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate. Exactly one of ``prompt`` (text or token ids) and ``messages``.

    ``prompt`` is used as is (no chat template), as OpenAI's completions route does;
    ``messages`` go through the model's chat template. Building one checks every field
    (:func:`~sage.llm.control_plane.validation.check_fields`): a bad value raises
    :class:`~sage.llm.control_plane.errors.InvalidRequestError` naming it.
    """

    prompt: str | Sequence[int] | None = None
    messages: Sequence[Message] | None = None
    max_tokens: int = 128
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    stop: Sequence[str] = ()
    timeout_s: float | None = None
    """Total time allowed, queueing included; ``None`` uses the manager's default."""

    def __post_init__(self) -> None:
        check_fields(self)  # the same checks for the Python API and the HTTP server

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def _post(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Event], event: Event) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: its reader is gone
        loop.call_soon_threadsafe(queue.put_nowait, event)


@dataclass
class Completion:
    """A finished request: the text, why it ended, and what it cost."""

    request_id: str
    engine_id: str
    model: str
    text: str
    token_ids: list[int]
    prompt_tokens: int
    finish_reason: str
    """OpenAI's values: ``"stop"`` (end of sequence or a stop string) or ``"length"``."""
    speculative: bool
    """Whether speculation was on for this request (the policy's decision)."""
    strategy: str
    """The strategy string that ran, or ``"none"``."""
    metrics: SpecDecodeMetrics = field(default_factory=SpecDecodeMetrics)
    queued_s: float = 0.0
    ttft_s: float | None = None
    """Submission to first text (queueing included), as a client sees it."""
    latency_s: float = 0.0
    """Submission to completion."""

    @property
    def completion_tokens(self) -> int:
        return len(self.token_ids)

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "engine_id": self.engine_id,
            "model": self.model,
            "text": self.text,
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "speculative": self.speculative,
            "strategy": self.strategy,
            "queued_s": self.queued_s,
            "ttft_s": self.ttft_s,
            "latency_s": self.latency_s,
            "metrics": self.metrics.to_json(),
        }


@dataclass(frozen=True)
class Event:
    """One item of a request's stream: text (``delta``), then the end (completion or error)."""

    delta: str = ""
    completion: Completion | None = None
    error: ControlPlaneError | None = None

    @property
    def final(self) -> bool:
        return self.completion is not None or self.error is not None


Listener = Callable[[Event], None]


class RequestHandle:
    """A submitted request: wait for it, stream it, or cancel it."""

    def __init__(self, request: GenerationRequest, engine_id: str, timeout_s: float | None) -> None:
        self.id = f"req-{next(_ids)}"
        self.request = request
        self.engine_id = engine_id
        self.submitted_at = time.monotonic()
        self.deadline = self.submitted_at + timeout_s if timeout_s is not None else None
        self.started_at: float | None = None
        self.first_text_at: float | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._events: list[Event] = []
        self._listeners: list[Listener] = []
        self._cancelled = False
        self._claimed = False
        self._outcome: Event | None = None
        self.prompt_ids: list[int] | None = None
        """The prompt's token ids when the backend computed them while checking the request
        (:meth:`~sage.llm.control_plane.backend.EngineBackend.check_request`)."""
        self.on_cancel: Callable[[RequestHandle], None] | None = None
        """Set by the engine that queued the request, to take a cancelled request out of its
        queue (and count it); a running request is stopped by the engine at its next step."""

    # -- caller side --------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def ending(self) -> bool:
        """True once someone has claimed the right to end the request (or it ended)."""
        return self._claimed

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> bool:
        """Ask the engine to stop this request; it finishes with :class:`RequestCancelledError`.

        Returns False when it had already finished. A queued request never starts; a running
        one stops at its next step.
        """
        if self._claimed:
            return False
        self._cancelled = True
        if self.on_cancel is not None:
            self.on_cancel(self)
        elif self.started_at is None:
            self.fail(RequestCancelledError(f"request {self.id} was cancelled."))
        return True

    def result(self, timeout: float | None = None) -> Completion:
        """Wait for the completion; raises the request's error.

        ``timeout`` bounds this wait only; the request's own deadline is enforced by the engine.
        """
        if not self._done.wait(timeout):
            raise RequestTimeoutError(f"request {self.id} did not finish within {timeout} s.")
        assert self._outcome is not None
        if self._outcome.error is not None:
            raise self._outcome.error
        assert self._outcome.completion is not None
        return self._outcome.completion

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Yield the stream's events as they come, ending with the final one (blocking)."""
        seen = 0
        waker = threading.Event()
        self._subscribe(lambda _event: waker.set())
        while True:
            with self._lock:
                pending = self._events[seen:]
                seen = len(self._events)
                waker.clear()
            for event in pending:
                yield event
                if event.final:
                    return
            if not waker.wait(timeout):
                raise RequestTimeoutError(f"request {self.id}: no event within {timeout} s.")

    async def aevents(self) -> AsyncIterator[Event]:
        """The same stream for asyncio code; never blocks the event loop."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event] = asyncio.Queue()
        with self._lock:
            backlog = list(self._events)
            self._listeners.append(lambda e: _post(loop, queue, e))
        for event in backlog:
            yield event
            if event.final:
                return
        while True:
            event = await queue.get()
            yield event
            if event.final:
                return

    def expired(self, now: float | None = None) -> bool:
        return self.deadline is not None and (now or time.monotonic()) >= self.deadline

    # -- engine side --------------------------------------------------------------------

    def mark_started(self) -> None:
        self.started_at = time.monotonic()

    def emit(self, delta: str) -> None:
        """Stream a piece of text (ignored once the request finished)."""
        if delta and not self._claimed:
            if self.first_text_at is None:
                self.first_text_at = time.monotonic()
            self._publish(Event(delta=delta))

    def claim(self) -> bool:
        """Reserve the right to end this request: True once, False to every later caller.

        The engine claims, records its numbers, then calls ``finish``/``fail`` with
        ``claimed=True``, so a caller who receives the outcome also sees it counted.
        """
        with self._lock:
            if self._claimed:
                return False
            self._claimed = True
            return True

    def finish(self, completion: Completion, claimed: bool = False) -> bool:
        """Complete the request; False (and nothing happens) if it had already finished."""
        return self._publish(Event(completion=completion), final=True, claimed=claimed)

    def fail(self, error: ControlPlaneError, claimed: bool = False) -> bool:
        """Fail the request; False (and nothing happens) if it had already finished."""
        return self._publish(Event(error=error), final=True, claimed=claimed)

    def _subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def _publish(self, event: Event, final: bool = False, claimed: bool = False) -> bool:
        with self._lock:
            if self._outcome is not None or (self._claimed and not claimed):
                return False
            if final:
                self._claimed = True
            if final:
                self._outcome = event
            self._events.append(event)
            listeners = list(self._listeners)
        if final:
            self._done.set()
        for listener in listeners:
            listener(event)
        return True
