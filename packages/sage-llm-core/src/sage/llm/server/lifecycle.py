"""What the server does when a client goes away and when the server itself is told to stop.

A client that disconnects cancels its request, streaming or not, running or queued: an
abandoned request would otherwise hold a single-stream engine for its whole ``max_tokens``
while the next client waits. Starlette cancels neither a handler awaiting a result nor (on
every server and spec version) a stream that has not sent anything yet when the client goes
away, so both watch the ASGI receive channel for ``http.disconnect`` themselves.

On SIGTERM or SIGINT the server drains (see :class:`Lifecycle`): new requests get a 503 with
``Retry-After``, requests in flight get up to the shutdown timeout to finish, and those still
running then end with an error a client can read (a final SSE error event and ``[DONE]``, or
a 503 JSON body) before the engines are shut down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterable, Callable
from functools import partial
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from sage.llm.control_plane.manager import ControlPlaneManager
from sage.llm.control_plane.requests import Event, RequestHandle
from sage.llm.server import protocol

log = logging.getLogger("sage.llm.server")

RETRY_AFTER_S = {429: 1, 503: 5}
"""``Retry-After`` seconds by status: a full queue frees up quickly; an engine that is down
or a server that is stopping needs longer (or another instance behind the load balancer)."""

MONITORING_PATHS = frozenset({"/metrics", "/status"})
"""Still answered while draining, so the drain itself can be watched."""

POLL_S = 0.05
ANSWER_S = 5.0
"""After the shutdown timeout: how long the engines get to stop and the handlers to write
their errors to the clients they cut off."""


def retry_after(status: int) -> dict[str, str]:
    """The ``Retry-After`` header for an error status that is worth retrying (429, 503)."""
    seconds = RETRY_AFTER_S.get(status)
    return {"Retry-After": str(seconds)} if seconds is not None else {}


class Lifecycle:
    """The server's shutdown state, shared by the app and the uvicorn server that runs it.

    ``grace_s`` is the shutdown timeout: how long requests in flight get to finish once a
    drain began. The app counts requests in flight and refuses new ones while draining; the
    server begins the drain on a signal and runs :meth:`drain` before its own shutdown.
    """

    def __init__(self, grace_s: float = 30.0) -> None:
        self.grace_s = grace_s
        self.draining = False
        self.cut_short = False
        """Set by a second signal: end the grace period now."""
        self.in_flight = 0
        """Requests being answered (monitoring routes aside); changed on the event loop only."""

    async def drain(self, manager: ControlPlaneManager, reason: str) -> None:
        """Let the requests in flight finish for up to ``grace_s`` (new ones get 503), then
        stop the engines without draining, so those still running or queued end with a 503
        their handlers write to the client; returns once they did (or after ``ANSWER_S``)."""
        self.draining = True
        log.info(
            "%s: shutting down; %d request(s) in flight get up to %g s to finish, new "
            "requests get 503",
            reason,
            self.in_flight,
            self.grace_s,
        )
        deadline = time.monotonic() + self.grace_s
        while self.in_flight and not self.cut_short and time.monotonic() < deadline:
            await anyio.sleep(POLL_S)
        if not self.in_flight:
            log.info("every request finished")
            return
        log.warning(
            "shutdown timeout (%g s) over: ending %d request(s) with 503",
            self.grace_s,
            self.in_flight,
        )
        reason = (
            f"the server is shutting down and its shutdown timeout ({self.grace_s:g} s) is "
            "over; retry on another instance or once it is back."
        )
        await anyio.to_thread.run_sync(
            partial(manager.shutdown, drain=False, timeout=ANSWER_S, reason=reason)
        )
        deadline = time.monotonic() + ANSWER_S
        while self.in_flight and time.monotonic() < deadline:
            await anyio.sleep(POLL_S)


class DrainMiddleware:
    """Counts the requests in flight and, while draining, answers new ones with 503 at once
    (OpenAI error JSON, ``Retry-After``, ``Connection: close``) instead of refusing
    connections: a client or load balancer learns to go elsewhere, not that the host died."""

    def __init__(self, app: ASGIApp, lifecycle: Lifecycle) -> None:
        self.app = app
        self.lifecycle = lifecycle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in MONITORING_PATHS:
            await self.app(scope, receive, send)
            return
        if self.lifecycle.draining:
            body = protocol.error_body(
                "the server is shutting down and takes no new requests; retry on another "
                "instance or once it is back.",
                503,
                "shutting_down",
            )
            headers = {**retry_after(503), "Connection": "close"}
            await JSONResponse(body, status_code=503, headers=headers)(scope, receive, send)
            return
        self.lifecycle.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.lifecycle.in_flight -= 1


async def _disconnected(receive: Receive) -> None:
    """Return once the client has gone away.

    Call it only after the request body was read: it takes the messages off the receive
    channel. Once the body is complete, an ASGI server answers ``receive()`` only when the
    client disconnects (or the response was sent), so this waits without polling.
    """
    while (await receive())["type"] != "http.disconnect":
        await anyio.sleep(POLL_S)  # a server that answers at once with no more body: no spin


async def outcome_or_disconnect(request: Request, handle: RequestHandle) -> Event | None:
    """The request's final event, or None when the client went away first (the request is
    then cancelled: a queued one never runs, a running one stops at its next step)."""
    outcome: Event | None = None

    async with anyio.create_task_group() as group:

        async def wait_outcome() -> None:
            nonlocal outcome
            async for event in handle.aevents():
                if event.final:
                    outcome = event
            group.cancel_scope.cancel()

        async def watch() -> None:
            await _disconnected(request.receive)
            handle.cancel()
            group.cancel_scope.cancel()

        group.start_soon(wait_outcome)
        group.start_soon(watch)
    return outcome


class EventStream(StreamingResponse):
    """Server-sent events that call ``on_disconnect`` when the client goes away.

    Starlette's own listener runs only for ASGI spec versions before 2.4; from 2.4 it waits
    for ``send`` to fail, which uvicorn 0.30 never does and which never happens while a
    request is queued (nothing is sent yet). Watching the receive channel here gives one
    behaviour on every version: the request is cancelled, queued or running.
    """

    def __init__(self, content: AsyncIterable[str], on_disconnect: Callable[[], Any]) -> None:
        super().__init__(content, media_type="text/event-stream")
        self.on_disconnect = on_disconnect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                await _disconnected(receive)
                self.on_disconnect()
                group.cancel_scope.cancel()

            group.start_soon(watch)
            try:
                await self.stream_response(send)
            except OSError:  # a server that reports the disconnect by failing send
                self.on_disconnect()
            group.cancel_scope.cancel()
