"""OpenAI request bodies in, OpenAI response bodies out (completions and chat completions).

Parsing is strict: an unknown field or an unsupported value (``n=2``, ``logprobs``, tools)
is a 400 that names the field, never silently ignored. Supported extensions: ``top_k``,
and a ``sage_llm`` object on every response with the request's speculative metrics.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sage.llm.control_plane.errors import ControlPlaneError, InvalidRequestError
from sage.llm.control_plane.requests import Completion, GenerationRequest
from sage.llm.control_plane.validation import check_int, check_text, shown

COMMON = {
    "model",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "n",
    "stream",
    "stream_options",
    "stop",
    "seed",
    "user",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
}
COMPLETION_FIELDS = COMMON | {"prompt", "echo", "best_of", "suffix"}
CHAT_FIELDS = COMMON | {
    "messages",
    "max_completion_tokens",
    "top_logprobs",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
}


@dataclass(frozen=True)
class ParsedRequest:
    """A validated OpenAI request: what to generate, and how to answer."""

    model: str | None
    request: GenerationRequest
    stream: bool
    include_usage: bool
    chat: bool
    aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Request field -> the body's field it came from, where the names differ."""

    def naming_fields(self) -> contextlib.AbstractContextManager[None]:
        """Errors raised inside (the engine's model checks) name the field as sent."""
        return named_as_sent(self.aliases)


@contextlib.contextmanager
def named_as_sent(aliases: Mapping[str, str]) -> Iterator[None]:
    """An :class:`InvalidRequestError` raised inside names the field as the client sent it
    (``max_completion_tokens``, not the request's ``max_tokens``)."""
    try:
        yield
    except InvalidRequestError as exc:
        if exc.param is not None and exc.param in aliases:
            exc.param = aliases[exc.param]
        raise


def parse(body: Any, *, chat: bool, default_max_tokens: int) -> ParsedRequest:
    if not isinstance(body, Mapping):
        raise InvalidRequestError("the request body must be a JSON object.")
    allowed = CHAT_FIELDS if chat else COMPLETION_FIELDS
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidRequestError(f"unsupported field(s): {', '.join(unknown)}.", unknown[0])
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidRequestError("model must be a string.", "model")
    _only(body, "n", (None, 1), "only n=1 is supported")
    _only(body, "presence_penalty", (None, 0, 0.0), "presence_penalty is not supported")
    _only(body, "frequency_penalty", (None, 0, 0.0), "frequency_penalty is not supported")
    _only(body, "logprobs", (None, False), "logprobs are not supported")
    if body.get("logit_bias"):
        raise InvalidRequestError("logit_bias is not supported.", "logit_bias")
    stream = body.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise InvalidRequestError("stream must be true or false.", "stream")
    include_usage = _stream_options(body.get("stream_options"), bool(stream))
    stops = _stop(body.get("stop"))
    user = body.get("user")
    if user is not None:
        check_text("user", user, "user")
    aliases: dict[str, str] = {}
    fields: dict[str, Any] = {
        "temperature": _or(body.get("temperature"), 1.0),
        "top_p": body.get("top_p"),
        "top_k": body.get("top_k"),
        "seed": body.get("seed"),
        "stop": stops,
    }
    if chat:
        _only(body, "top_logprobs", (None,), "top_logprobs is not supported")
        if body.get("tools"):
            raise InvalidRequestError("tools are not supported by this server.", "tools")
        if body.get("tool_choice") not in (None, "none"):
            raise InvalidRequestError(
                "tools are not supported by this server (tool_choice may only be none).",
                "tool_choice",
            )
        fmt = body.get("response_format")
        if fmt is not None and (not isinstance(fmt, Mapping) or fmt.get("type") != "text"):
            raise InvalidRequestError(
                "only response_format {'type': 'text'} is supported.", "response_format"
            )
        _only(
            body,
            "parallel_tool_calls",
            (None, True, False),
            "parallel_tool_calls must be a boolean",
        )
        if body.get("max_completion_tokens") is not None:
            # the newer name wins over max_tokens (as in vLLM); errors name the field sent
            aliases["max_tokens"] = "max_completion_tokens"
            if body.get("max_tokens") is not None:
                check_int("max_tokens", body["max_tokens"], 1)
        limit = _or(body.get("max_completion_tokens"), body.get("max_tokens"))
        fields["max_tokens"] = _or(limit, default_max_tokens)
        fields["messages"] = body.get("messages")
        if fields["messages"] is None:
            raise InvalidRequestError("messages is required.", "messages")
    else:
        _only(body, "echo", (None, False), "echo is not supported")
        _only(body, "best_of", (None, 1), "best_of is not supported")
        _only(body, "suffix", (None,), "suffix is not supported")
        fields["max_tokens"] = _or(body.get("max_tokens"), 16)
        fields["prompt"] = _prompt(body.get("prompt"))
    with named_as_sent(aliases):
        request = GenerationRequest(**fields)  # the field checks every caller gets
    return ParsedRequest(model, request, bool(stream), include_usage, chat, aliases)


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _only(body: Mapping[str, Any], name: str, allowed: tuple[Any, ...], message: str) -> None:
    """Accept only ``allowed`` values (compared with their type: ``n=True`` is not ``n=1``)."""
    value = body.get(name)
    if not any(value is a or (type(value) is type(a) and value == a) for a in allowed):
        raise InvalidRequestError(f"{message} (got {name}={shown(value)}).", name)


def _stream_options(options: Any, stream: bool) -> bool:
    """``include_usage``; stream_options belong to streamed requests only (as in vLLM)."""
    if options is None:
        return False
    if not stream:
        raise InvalidRequestError(
            "stream_options is only allowed with stream: true.", "stream_options"
        )
    if not isinstance(options, Mapping):
        raise InvalidRequestError("stream_options must be an object.", "stream_options")
    unknown = sorted(set(options) - {"include_usage"})
    if unknown:
        raise InvalidRequestError(
            f"unsupported stream_options field(s): {', '.join(unknown)}; only include_usage.",
            "stream_options",
        )
    include_usage = options.get("include_usage", False)
    if not isinstance(include_usage, bool) and include_usage is not None:
        raise InvalidRequestError(
            "stream_options.include_usage must be true or false.", "stream_options"
        )
    return bool(include_usage)


def _stop(stop: Any) -> list[Any]:
    """``stop``: a string or a list of at most 4 (each is checked by the request itself)."""
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if not isinstance(stop, list):
        raise InvalidRequestError(
            f"stop must be a string or a list of strings, got {shown(stop)}.", "stop"
        )
    if len(stop) > 4:
        raise InvalidRequestError("stop takes at most 4 strings.", "stop")
    return stop


def _prompt(prompt: Any) -> Any:
    if prompt is None:
        raise InvalidRequestError("prompt is required.", "prompt")
    if isinstance(prompt, list) and prompt and all(isinstance(p, (str, list)) for p in prompt):
        if len(prompt) != 1:
            raise InvalidRequestError("only one prompt per request is supported.", "prompt")
        return prompt[0]
    return prompt


def new_id(chat: bool) -> str:
    return f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"


def usage(completion: Completion) -> dict[str, int]:
    return {
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "total_tokens": completion.prompt_tokens + completion.completion_tokens,
    }


def extension(completion: Completion) -> dict[str, Any]:
    """The ``sage_llm`` object: what speculation did for this request."""
    m = completion.metrics
    return {
        "engine_id": completion.engine_id,
        "speculative": completion.speculative,
        "strategy": completion.strategy,
        "acceptance_rate": m.acceptance_rate,
        "mean_accepted_length": m.mean_accepted_length,
        "ttft_s": completion.ttft_s,
        "latency_s": completion.latency_s,
    }


def response(parsed: ParsedRequest, rid: str, completion: Completion) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": 0,
        "finish_reason": completion.finish_reason,
        "logprobs": None,
    }
    if parsed.chat:
        choice["message"] = {"role": "assistant", "content": completion.text}
    else:
        choice["text"] = completion.text
    return {
        "id": rid,
        "object": "chat.completion" if parsed.chat else "text_completion",
        "created": int(time.time()),
        "model": completion.model,
        "choices": [choice],
        "usage": usage(completion),
        "sage_llm": extension(completion),
    }


def chunk(
    parsed: ParsedRequest,
    rid: str,
    model: str,
    *,
    text: str | None = None,
    role: bool = False,
    finish_reason: str | None = None,
) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish_reason, "logprobs": None}
    if parsed.chat:
        delta: dict[str, Any] = {}
        if role:
            delta["role"] = "assistant"
        if text is not None:
            delta["content"] = text
        choice["delta"] = delta
    else:
        choice["text"] = text or ""
    return {
        "id": rid,
        "object": "chat.completion.chunk" if parsed.chat else "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
    }


def usage_chunk(parsed: ParsedRequest, rid: str, completion: Completion) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "chat.completion.chunk" if parsed.chat else "text_completion",
        "created": int(time.time()),
        "model": completion.model,
        "choices": [],
        "usage": usage(completion),
        "sage_llm": extension(completion),
    }


ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    415: "invalid_request_error",
    429: "overloaded_error",
    499: "cancelled_error",
    501: "not_implemented_error",
    503: "service_unavailable_error",
}


def error_body(
    message: str, status: int, code: str | None, param: str | None = None
) -> dict[str, Any]:
    """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``.

    Text that came from the client (an unknown field's name) may hold a lone surrogate, which
    cannot be sent as UTF-8: it is escaped (``\\ud800``) so the error itself can be sent.
    """
    return {
        "error": {
            "message": _sendable(message),
            "type": ERROR_TYPES.get(status, "server_error"),
            "param": None if param is None else _sendable(param),
            "code": code,
        }
    }


def _sendable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_of(exc: ControlPlaneError) -> tuple[int, dict[str, Any]]:
    param = getattr(exc, "param", None)
    return exc.status, error_body(str(exc), exc.status, exc.code, param)
