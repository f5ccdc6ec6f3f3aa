"""The routes users of ``vllm serve`` expect beyond OpenAI's completions, with vLLM's shapes.

``GET /version``; ``POST /tokenize`` (``{model?, prompt, add_special_tokens?}`` or ``{model?,
messages, add_generation_prompt?, add_special_tokens?}`` -> ``{count, max_model_len,
tokens}``); ``POST /detokenize`` (``{model?, tokens}`` -> ``{prompt}``); ``GET
/v1/models/{id}`` (the openai client's ``models.retrieve``). Tokenizing is routed like a
completion (to a ready engine serving ``model``) and done by that engine's backend
(:meth:`~sage.llm.control_plane.backend.EngineBackend.tokenize`), so the ids are the ones the
engine itself would feed its model; an engine kind that cannot tokenize answers 501.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sage.llm.control_plane.backend import EngineBackend
from sage.llm.control_plane.errors import (
    EngineNotFoundError,
    EngineUnavailableError,
    InvalidRequestError,
)
from sage.llm.control_plane.manager import ControlPlaneManager

PROMPT_FIELDS = {"model", "prompt", "add_special_tokens", "return_token_strs"}
CHAT_FIELDS = {"model", "messages", "add_generation_prompt", "add_special_tokens"}
CHAT_FIELDS |= {"return_token_strs"}
DETOKENIZE_FIELDS = {"model", "tokens"}


def model_card(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "sage-llm"}


def routes(manager: ControlPlaneManager) -> list[Route]:
    async def version(_: Request) -> Response:
        from sage.llm._version import __version__

        return JSONResponse({"version": __version__})

    async def retrieve_model(request: Request) -> Response:
        name = request.path_params["model"]
        served = manager.models()
        if name not in served:
            raise EngineNotFoundError(
                f"the model {name!r} does not exist; served models: {', '.join(served) or 'none'}."
            )
        return JSONResponse(model_card(name))

    async def tokenize(request: Request) -> Response:
        body = await _object(request)
        chat = "messages" in body
        _known(body, CHAT_FIELDS if chat else PROMPT_FIELDS)
        if body.get("return_token_strs"):
            raise InvalidRequestError("return_token_strs is not supported.", "return_token_strs")
        if not chat and "prompt" not in body:
            raise InvalidRequestError("pass prompt (text) or messages (a chat).", "prompt")
        kw: dict[str, Any] = {
            "add_special_tokens": _flag(body, "add_special_tokens", None),
            "add_generation_prompt": _flag(body, "add_generation_prompt", True),
        }
        if chat:
            kw["messages"] = body["messages"]
        else:
            kw["prompt"] = body["prompt"]
        backend = _backend(manager, body)
        ids = await _in_thread(lambda: backend.tokenize(**kw))
        limit = backend.max_model_len()
        return JSONResponse({"count": len(ids), "max_model_len": limit, "tokens": ids})

    async def detokenize(request: Request) -> Response:
        body = await _object(request)
        _known(body, DETOKENIZE_FIELDS)
        if "tokens" not in body:
            raise InvalidRequestError("tokens is required (a list of token ids).", "tokens")
        backend = _backend(manager, body)
        text = await _in_thread(lambda: backend.detokenize(body["tokens"]))
        return JSONResponse({"prompt": text})

    return [
        Route("/version", version),
        Route("/tokenize", tokenize, methods=["POST"]),
        Route("/detokenize", detokenize, methods=["POST"]),
        Route("/v1/models/{model:path}", retrieve_model),
    ]


def _backend(manager: ControlPlaneManager, body: Mapping[str, Any]) -> EngineBackend:
    """The backend of the engine a completion for ``body["model"]`` would go to."""
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidRequestError("model must be a string.", "model")
    engine = manager.route(None, model)
    backend = engine.backend
    if backend is None:  # between route() and here the engine stopped or is restarting
        raise EngineUnavailableError(f"engine {engine.engine_id} is {engine.state.value}.")
    return backend


async def _in_thread(call: Callable[[], Any]) -> Any:
    """Tokenizing a long prompt takes milliseconds: off the event loop."""
    return await anyio.to_thread.run_sync(call)


async def _object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise InvalidRequestError(f"the request body is not valid JSON: {exc}.") from exc
    if not isinstance(body, dict):
        raise InvalidRequestError("the request body must be a JSON object.")
    return body


def _known(body: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidRequestError(f"unsupported field(s): {', '.join(unknown)}.", unknown[0])


def _flag(body: Mapping[str, Any], name: str, default: bool | None) -> bool | None:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidRequestError(f"{name} must be true or false.", name)
    return value
