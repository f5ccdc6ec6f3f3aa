"""A model-free engine for testing the control plane, its policies and plugins.

:class:`ScriptedBackend` "generates" a deterministic text (the prompt's characters in
reverse, one per token) and can be told to wait, to wait at a gate, to fail at load or to die
after a number of tokens. It runs the same single-stream loop as the reference engine, so
queueing, cancellation, timeouts, failures and stops behave as they do with a real model,
in milliseconds and without torch::

    cp = ControlPlaneManager("never", load_entry_points=False)
    cp.start_engine("fake", engine=ScriptedBackend, delay_s=0.01)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from sage.llm.control_plane.backend import EngineBackend, Interrupted, WorkerContext
from sage.llm.control_plane.errors import InvalidRequestError
from sage.llm.control_plane.faults import is_engine_fatal, request_error
from sage.llm.control_plane.requests import Completion, RequestHandle
from sage.llm.control_plane.states import Capabilities
from sage.llm.metrics import SpecDecodeMetrics
from sage.llm.strategy import SpeculativeStrategy


@dataclass(frozen=True, kw_only=True)
class ScriptedStrategy(SpeculativeStrategy):
    """A strategy object for control-plane tests: needs no installed strategy plugin."""

    name: ClassVar[str] = "scripted"

    def apply(self, engine_config: dict[str, Any]) -> None:
        self.speculative_config(engine_config).update(method="ngram", num_speculative_tokens=2)


OPTIONS = ("delay_s", "gate", "fail_load", "die_after_tokens", "started", "raise_on")


class ScriptedEngineDeath(RuntimeError):
    """What ``die_after_tokens`` raises: the engine itself failing (it leaves ``run``)."""


def scripted_text(prompt: str, max_tokens: int) -> str:
    """What :class:`ScriptedBackend` answers to ``prompt``."""
    return prompt[::-1][:max_tokens]


class ScriptedBackend(EngineBackend):
    """Options: ``delay_s`` per token; ``gate`` (a ``threading.Event`` each request waits
    for before its first token); ``fail_load`` (an exception message); ``die_after_tokens``
    (the engine raises :class:`ScriptedEngineDeath` after producing this many tokens in
    total); ``started`` (a ``threading.Event`` set when a request starts generating);
    ``raise_on`` (a dict from prompt text to the exception serving that prompt raises, as a
    bug met by one request would)."""

    kind = "scripted"
    capabilities: ClassVar[Capabilities] = Capabilities(
        batching=False, switch_per_request=True, switch_k_per_request=False, note="test engine"
    )
    loads: ClassVar[int] = 0

    def __init__(
        self,
        model_id: str,
        strategy: Any,
        options: dict[str, Any],
        speculate_at_start: bool = True,
    ) -> None:
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise InvalidRequestError(f"unknown option(s) {', '.join(unknown)}.")
        super().__init__(model_id, strategy, options, speculate_at_start)
        self.produced = 0

    def load(self) -> None:
        type(self).loads += 1
        if self.options.get("fail_load"):
            raise RuntimeError(str(self.options["fail_load"]))

    def run(self, ctx: WorkerContext) -> None:
        while (handle := ctx.next_request()) is not None:
            self.serve_one(ctx, handle, ctx.decide(running=1).speculate)

    def serve_one(self, ctx: WorkerContext, handle: RequestHandle, speculate: bool) -> None:
        request = handle.request
        prompt = request.prompt if isinstance(request.prompt, str) else None
        if prompt is None:
            messages = request.messages or []
            prompt = str(messages[-1]["content"]) if messages else ""
        text = scripted_text(prompt, request.max_tokens)
        start = time.monotonic()
        started = self.options.get("started")
        if isinstance(started, threading.Event):
            started.set()
        gate = self.options.get("gate")
        try:
            failure = (self.options.get("raise_on") or {}).get(prompt)
            if failure is not None:
                raise failure
            if isinstance(gate, threading.Event):
                while not gate.wait(0.01):
                    self._check(ctx, handle)
            for ch in text:
                self._check(ctx, handle)
                delay = float(self.options.get("delay_s", 0.0))
                if delay:
                    time.sleep(delay)
                limit = self.options.get("die_after_tokens")
                if limit is not None and self.produced >= int(limit):
                    raise ScriptedEngineDeath(f"scripted engine died after {self.produced} tokens")
                self.produced += 1
                handle.emit(ch)
        except Interrupted as stop:
            ctx.fail_request(handle, stop.error)
            return
        except Exception as exc:  # one request's failure, as the real backends handle it
            if is_engine_fatal(exc) or isinstance(exc, ScriptedEngineDeath):
                raise
            ctx.fail_request(handle, request_error(handle, exc))
            return
        now = time.monotonic()
        metrics = SpecDecodeMetrics(num_generated_tokens=len(text), wall_time_s=now - start)
        completion = Completion(
            request_id=handle.id,
            engine_id=ctx.engine_id,
            model=ctx.model_name,
            text=text,
            token_ids=[ord(c) for c in text],
            prompt_tokens=len(prompt),
            finish_reason="length" if len(text) == request.max_tokens else "stop",
            speculative=speculate and self.strategy is not None,
            strategy=self.strategy.to_string() if speculate and self.strategy else "none",
            metrics=metrics,
            queued_s=start - handle.submitted_at,
            ttft_s=(handle.first_text_at - handle.submitted_at) if handle.first_text_at else None,
            latency_s=now - handle.submitted_at,
        )
        ctx.complete(handle, completion, now - start)

    @staticmethod
    def _check(ctx: WorkerContext, handle: RequestHandle) -> None:
        error = ctx.interrupted(handle)
        if error is not None:
            raise Interrupted(error)
