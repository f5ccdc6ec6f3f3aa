"""What a request must satisfy before an engine sees it, checked in one place for every caller.

Two layers, both before the request is queued:

* field checks (:func:`check_fields`), which need no model: types, ranges, text that can be
  encoded. :class:`~sage.llm.control_plane.requests.GenerationRequest` runs them when it is
  built, so the Python API and the HTTP server refuse the same things with the same words;
  the server turns the :class:`~sage.llm.control_plane.errors.InvalidRequestError` into a 400
  whose ``param`` is the field.
* model checks (:func:`request_token_ids`, :func:`check_token_ids`, :func:`check_context`),
  which backends run in :meth:`~sage.llm.control_plane.backend.EngineBackend.check_request`:
  the prompt tokenized with the model's own tokenizer and chat template, every token id
  inside the vocabulary, prompt plus ``max_tokens`` inside the context.

Why before the queue: a value an engine cannot take fails deep inside it (an embedding
lookup out of range is an ``IndexError`` on a CPU and a device-side assert that poisons the
whole CUDA context on a GPU), where it would end every request the engine holds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sage.llm.control_plane.errors import InvalidRequestError

if TYPE_CHECKING:
    from sage.llm.control_plane.requests import GenerationRequest

INT64_MAX = 2**63 - 1
"""The largest integer parameter accepted: seeds are signed 64-bit in torch's generators and in
vLLM (whose server bounds ``seed`` the same way), and no count a request sets comes near it."""

ROLES = ("system", "user", "assistant", "developer", "tool")


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: error messages quote what was sent, but a
    megabyte-long value must not come back as a megabyte-long message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_text(name: str, value: object, param: str) -> str:
    """``value`` must be a string that UTF-8 can encode (JSON's ``"\\ud800"`` decodes to a lone
    surrogate, which no tokenizer takes)."""
    if not isinstance(value, str):
        raise InvalidRequestError(f"{name} must be a string, got {shown(value)}.", param)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequestError(
            f"{name} is not valid text: it holds a lone surrogate ({shown(value[exc.start])} at "
            f"position {exc.start}); send UTF-8 text.",
            param,
        ) from None
    return value


def check_int(name: str, value: object, low: int, high: int = INT64_MAX) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidRequestError(
            f"{name} must be an integer from {low} to {high}, got {shown(value)}.", name
        )


def check_number(name: str, value: object, low: float, high: float | None) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        try:
            number = float(value)  # type: ignore[arg-type]
        except OverflowError:  # an int beyond float's range
            ok = False
        else:
            ok = math.isfinite(number) and number >= low and (high is None or number <= high)
    if not ok:
        span = f"between {low} and {high}" if high is not None else f">= {low}"
        raise InvalidRequestError(
            f"{name} must be a finite number {span}, got {shown(value)}.", name
        )


def check_prompt(prompt: object) -> None:
    """A non-empty string, or a non-empty list of non-negative token ids (the upper bound is
    the model's vocabulary, checked by the backend)."""
    if isinstance(prompt, str):
        check_text("prompt", prompt, "prompt")
        if not prompt:
            raise InvalidRequestError("prompt is empty; pass some text.", "prompt")
        return
    if isinstance(prompt, (bytes, bytearray, Mapping)) or not isinstance(prompt, Sequence):
        raise InvalidRequestError(
            f"prompt must be a string or a list of token ids, got {shown(prompt)}.", "prompt"
        )
    if not prompt:
        raise InvalidRequestError("prompt is an empty list; pass at least one token id.", "prompt")
    for i, token in enumerate(prompt):
        if isinstance(token, bool) or not isinstance(token, int) or token < 0:
            raise InvalidRequestError(
                f"prompt[{i}] must be a token id (an integer >= 0), got {shown(token)}.", "prompt"
            )


def check_messages(messages: object) -> None:
    if isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, Sequence):
        raise InvalidRequestError(
            f"messages must be a list of {{role, content}} objects, got {shown(messages)}.",
            "messages",
        )
    if not messages:
        raise InvalidRequestError("messages is empty; pass at least one message.", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidRequestError(f"messages[{i}] must be an object.", "messages")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise InvalidRequestError(
                f"messages[{i}].role must be one of {', '.join(ROLES)}, got {shown(role)}.",
                "messages",
            )
        if not isinstance(content, str):
            raise InvalidRequestError(
                f"messages[{i}].content must be a string (text parts only).", "messages"
            )
        for key, value in message.items():  # the chat template may render any of them
            check_text(f"messages[{i}] key", key, "messages")
            if isinstance(value, str):
                check_text(f"messages[{i}].{key}", value, "messages")


def check_stop(stop: object) -> None:
    if isinstance(stop, (str, bytes, Mapping)) or not isinstance(stop, Sequence):
        raise InvalidRequestError(f"stop must be a list of strings, got {shown(stop)}.", "stop")
    for i, text in enumerate(stop):
        check_text(f"stop[{i}]", text, "stop")
        if not text:
            raise InvalidRequestError(
                f"stop[{i}] is empty; an empty stop string would match at once. Remove it.",
                "stop",
            )


def check_fields(request: GenerationRequest) -> None:
    """Every check on a request's fields that needs no model (see the module docstring)."""
    if (request.prompt is None) == (request.messages is None):
        raise InvalidRequestError("pass exactly one of prompt and messages.", "prompt")
    if request.prompt is not None:
        check_prompt(request.prompt)
    if request.messages is not None:
        check_messages(request.messages)
    check_int("max_tokens", request.max_tokens, 1)
    if request.seed is not None:
        check_int("seed", request.seed, 0)
    if request.top_k is not None:
        check_int("top_k", request.top_k, 1)
    check_number("temperature", request.temperature, 0.0, 2.0)
    if request.top_p is not None:
        check_number("top_p", request.top_p, 0.0, 1.0)
        if request.top_p == 0:
            raise InvalidRequestError("top_p must be > 0 (1 keeps every token).", "top_p")
    check_stop(request.stop)
    if request.timeout_s is not None:
        check_number("timeout", request.timeout_s, 0.0, None)


# -- model checks (run by backends before the request is queued) ----------------------------


def request_token_ids(tokenizer: Any, request: GenerationRequest, model_name: str) -> list[int]:
    """The request's prompt as the model's token ids; every failure is a 400 naming the field.

    ``prompt``: text tokenized as is (no chat template, as OpenAI's completions route) or ids
    passed through; ``messages``: rendered with the model's chat template. A template that
    raises (``raise_exception`` on roles that do not alternate, a key it cannot render) refuses
    the messages: that is the model's rule for its conversations, reported to the client.
    """
    from sage.llm.control_plane.faults import is_engine_fatal
    from sage.llm.prompts import has_chat_template, prompt_token_ids

    if request.messages is None:
        assert request.prompt is not None
        try:
            return prompt_token_ids(tokenizer, request.prompt, chat=False, model_name=model_name)
        except (ValueError, TypeError) as exc:
            raise InvalidRequestError(f"the prompt cannot be tokenized: {exc}", "prompt") from exc
    if tokenizer is None or not has_chat_template(tokenizer):
        raise InvalidRequestError(
            f"{model_name} has no chat template; use the completions route with a prompt.",
            "messages",
        )
    try:
        text = tokenizer.apply_chat_template(
            [dict(m) for m in request.messages], tokenize=False, add_generation_prompt=True
        )
        ids = [int(t) for t in tokenizer(text, add_special_tokens=False)["input_ids"]]
    except Exception as exc:
        if is_engine_fatal(exc):
            raise
        raise InvalidRequestError(
            f"the model's chat template refused the messages: {type(exc).__name__}: {exc}",
            "messages",
        ) from exc
    if not ids:
        raise InvalidRequestError("the messages render to no tokens.", "messages")
    return ids


def check_token_ids(ids: Sequence[int], vocab_size: int, param: str) -> None:
    """Every id in ``0 <= id < vocab_size`` (the model's embedding rows)."""
    bad = next((t for t in ids if not 0 <= t < vocab_size), None)
    if bad is not None:
        raise InvalidRequestError(
            f"token id {shown(bad)} is outside this model's vocabulary (ids 0 to "
            f"{vocab_size - 1}).",
            param,
        )


def check_context(prompt_tokens: int, max_tokens: int, context: int | None, param: str) -> None:
    """Prompt plus ``max_tokens`` within the model's context (``None``: no known limit)."""
    if context is None:
        return
    if prompt_tokens >= context:
        raise InvalidRequestError(
            f"the prompt is {prompt_tokens} tokens, and this model's context is {context} "
            "tokens; shorten the prompt.",
            param,
        )
    if prompt_tokens + max_tokens > context:
        raise InvalidRequestError(
            f"prompt ({prompt_tokens} tokens) + max_tokens ({max_tokens}) exceeds this model's "
            f"context of {context} tokens; lower max_tokens to at most "
            f"{context - prompt_tokens}.",
            "max_tokens",
        )
