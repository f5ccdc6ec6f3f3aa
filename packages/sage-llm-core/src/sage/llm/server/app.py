"""The ASGI app: OpenAI routes, ``/metrics``, ``/health``, ``/status`` and engine management.

Who may call what (API keys, the engine-admin switch, CORS, ``X-Request-Id``) is
:mod:`sage.llm.server.security`; the vLLM-style extras (``/version``, ``/tokenize``...) are
:mod:`sage.llm.server.compat`.

Handlers never block the event loop: requests are queued on an engine and their events are
awaited through :meth:`~sage.llm.control_plane.requests.RequestHandle.aevents`; starting and
stopping engines (slow) run in a worker thread. Every error leaves as OpenAI's error JSON
with a 4xx/5xx status and one line that says what to fix; an unexpected exception is logged
here and answered with a generic 500 body, never a traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sage.llm.control_plane.errors import ControlPlaneError, InvalidRequestError
from sage.llm.control_plane.manager import ControlPlaneManager
from sage.llm.control_plane.requests import Completion
from sage.llm.server import compat, protocol, security
from sage.llm.server.lifecycle import (
    DrainMiddleware,
    EventStream,
    Lifecycle,
    outcome_or_disconnect,
    retry_after,
)
from sage.llm.server.security import ServerSettings

log = logging.getLogger("sage.llm.server")


def create_app(
    manager: ControlPlaneManager,
    *,
    default_max_tokens: int = 256,
    settings: ServerSettings | None = None,
    lifecycle: Lifecycle | None = None,
) -> Starlette:
    """The app serving ``manager``'s engines; ``default_max_tokens`` applies to chat requests
    that set no limit; ``settings``: keys, engine admin, CORS (default: no key, no admin,
    no CORS). ``lifecycle`` is the shutdown state the server drains it by (see
    :mod:`sage.llm.server.lifecycle`); ``app.state.lifecycle`` holds it."""
    settings = settings or ServerSettings()

    async def models(_: Request) -> Response:
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "sage-llm"}
            for name in manager.models()
        ]
        return JSONResponse({"object": "list", "data": data})

    async def completions(request: Request) -> Response:
        return await _generate(request, chat=False)

    async def chat_completions(request: Request) -> Response:
        return await _generate(request, chat=True)

    async def _generate(request: Request, chat: bool) -> Response:
        parsed = protocol.parse(
            await _json(request), chat=chat, default_max_tokens=default_max_tokens
        )
        handle = await _submit(manager, parsed)
        rid = protocol.new_id(chat)
        if parsed.stream:
            return EventStream(_sse(parsed, rid, handle, manager), on_disconnect=handle.cancel)
        try:
            event = await outcome_or_disconnect(request, handle)
        finally:
            handle.cancel()  # no-op once finished; frees the engine if this task was cancelled
        if event is None:
            return Response(status_code=499)  # the client went away: nobody reads this
        if event.error is not None:
            raise event.error
        assert event.completion is not None
        return JSONResponse(protocol.response(parsed, rid, event.completion))

    async def metrics(_: Request) -> Response:
        text = manager.prometheus_text()
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def health(_: Request) -> Response:
        ready = manager.models()
        body = {"status": "ok" if ready else "unavailable", "models": ready}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def status(_: Request) -> Response:
        return JSONResponse(manager.status())

    async def list_engines(_: Request) -> Response:
        return JSONResponse({"object": "list", "data": manager.list_engines()})

    async def engine_info(request: Request) -> Response:
        return JSONResponse(manager.engine_info(request.path_params["engine_id"]))

    async def start_engine(request: Request) -> Response:
        security.require_json(request)
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            raise InvalidRequestError("body must be an object with a model name.", "model")
        unknown = sorted(
            set(body) - {"model", "strategy", "engine", "served_model_name", "options"}
        )
        if unknown:
            raise InvalidRequestError(f"unsupported field(s): {', '.join(unknown)}.", unknown[0])
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise InvalidRequestError("options must be an object.", "options")
        settings.check_engine_options(options)

        def start() -> str:
            return manager.start_engine(
                body["model"],
                body.get("strategy"),
                body.get("engine", "transformers"),
                served_model_name=body.get("served_model_name"),
                **options,
            )

        engine_id = await anyio.to_thread.run_sync(start)
        return JSONResponse(manager.engine_info(engine_id), status_code=201)

    async def stop_engine(request: Request) -> Response:
        security.require_json(request)
        engine_id = request.path_params["engine_id"]
        body = await _json(request, optional=True) or {}
        drain = body.get("drain", True) if isinstance(body, dict) else True
        if not isinstance(drain, bool):
            raise InvalidRequestError("drain must be true or false.", "drain")
        manager.engine_info(engine_id)  # 404 before starting a thread
        await anyio.to_thread.run_sync(lambda: manager.stop_engine(engine_id, drain=drain))
        return JSONResponse(manager.engine_info(engine_id))

    routes = [
        Route("/v1/models", models),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/metrics", metrics),
        Route("/health", health),
        Route("/status", status),
        *compat.routes(manager),
    ]
    if settings.enable_engine_admin:
        routes += [
            Route("/v1/engines", list_engines),
            Route("/v1/engines", start_engine, methods=["POST"]),
            Route("/v1/engines/{engine_id}", engine_info),
            Route("/v1/engines/{engine_id}/stop", stop_engine, methods=["POST"]),
        ]
    else:

        async def admin_off(_: Request) -> Response:
            raise security.admin_disabled()

        routes += [
            Route(path, admin_off, methods=["GET", "POST"])
            for path in ("/v1/engines", "/v1/engines/{rest:path}")
        ]
    handlers = {
        ControlPlaneError: _control_plane_error,
        HTTPException: _http_error,
        Exception: _unexpected_error,
    }
    app = security.App(
        routes=routes, exception_handlers=handlers, middleware=security.middleware(settings)
    )
    app.state.lifecycle = lifecycle if lifecycle is not None else Lifecycle()
    app.add_middleware(DrainMiddleware, lifecycle=app.state.lifecycle)
    return app


async def _json(request: Request, optional: bool = False) -> Any:
    raw = await request.body()
    if optional and not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidRequestError(f"the request body is not valid JSON: {exc}.") from exc
    except RecursionError as exc:
        raise InvalidRequestError("the request body is nested too deeply.") from exc


async def _submit(manager: ControlPlaneManager, parsed: protocol.ParsedRequest) -> Any:
    """Queue the request. The engine checks it against its model first (tokenizing it), so
    this runs off the event loop, and before any byte of a stream: a refusal is a plain 4xx.
    Cancelled while queueing, the request is cancelled on the engine too."""
    queued: list[Any] = []

    def submit() -> Any:
        queued.append(manager.submit(parsed.request, model=parsed.model))
        return queued[0]

    try:
        with parsed.naming_fields():
            return await anyio.to_thread.run_sync(submit)
    except BaseException:
        for handle in queued:
            handle.cancel()
        raise


async def _sse(
    parsed: protocol.ParsedRequest, rid: str, handle: Any, manager: ControlPlaneManager
) -> AsyncIterator[str]:
    """Server-sent events; a client that goes away cancels the request on the engine."""
    model = parsed.model or manager.engine_info(handle.engine_id)["model"]
    finished: Completion | None = None
    try:
        if parsed.chat:
            yield _data(protocol.chunk(parsed, rid, model, role=True, text=""))
        async for event in handle.aevents():
            if event.error is not None:
                status, body = protocol.error_of(event.error)
                body["error"]["status"] = status
                yield _data(body)
                break
            if event.completion is not None:
                finished = event.completion
                yield _data(
                    protocol.chunk(
                        parsed,
                        rid,
                        model,
                        finish_reason=finished.finish_reason,
                        text=None if parsed.chat else "",
                    )
                )
                if parsed.include_usage:
                    yield _data(protocol.usage_chunk(parsed, rid, finished))
                break
            yield _data(protocol.chunk(parsed, rid, model, text=event.delta))
        yield "data: [DONE]\n\n"
    finally:
        if finished is None:
            handle.cancel()


def _data(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload)}\n\n"


async def _control_plane_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ControlPlaneError)
    status, body = protocol.error_of(exc)
    if status >= 500:
        log.warning("%s", exc)
    return JSONResponse(body, status_code=status, headers=retry_after(status))


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    body = protocol.error_body(str(exc.detail), exc.status_code, "http_error")
    return JSONResponse(body, status_code=exc.status_code)


async def _unexpected_error(_: Request, exc: Exception) -> Response:
    log.error("unexpected error while serving a request", exc_info=exc)
    body = protocol.error_body(
        f"internal error ({type(exc).__name__}); see the server log.", 500, "internal_error"
    )
    return JSONResponse(body, status_code=500)
