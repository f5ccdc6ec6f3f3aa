"""Tokenizing and detokenizing with an engine's Hugging Face tokenizer (``/tokenize``).

Both engine kinds hold the model's own tokenizer (the reference engine's, vLLM's
``get_tokenizer()``); these functions give the ids the engine itself would feed the model:
a text prompt tokenized as the completions route does (with the tokenizer's special tokens),
messages through the chat template as the chat route does (no special tokens on top). vLLM's
``/tokenize`` has the same defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sage.llm.control_plane.errors import InvalidRequestError
from sage.llm.control_plane.requests import GenerationRequest, Message


def tokenize(
    tokenizer: Any,
    *,
    prompt: str | None = None,
    messages: Sequence[Message] | None = None,
    add_special_tokens: bool | None = None,
    add_generation_prompt: bool = True,
    model_name: str = "this model",
) -> list[int]:
    """Token ids of ``prompt`` or of ``messages`` (exactly one). ``add_special_tokens``
    defaults to True for a prompt and False for messages (the template adds its own)."""
    if (prompt is None) == (messages is None):
        raise InvalidRequestError("pass exactly one of prompt and messages.", "prompt")
    if messages is not None:
        GenerationRequest(messages=messages)  # the chat route's checks of each message
        if not getattr(tokenizer, "chat_template", None):
            raise InvalidRequestError(
                f"{model_name} has no chat template; tokenize a prompt instead.", "messages"
            )
        try:
            text = tokenizer.apply_chat_template(
                list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
            )
        except Exception as exc:  # a template's own raise_exception(), a jinja error
            raise InvalidRequestError(f"the chat template refused: {exc}", "messages") from exc
        special = bool(add_special_tokens)
    else:
        if not isinstance(prompt, str):
            raise InvalidRequestError("prompt must be a string.", "prompt")
        text = prompt
        special = add_special_tokens is not False
    return [int(t) for t in tokenizer(text, add_special_tokens=special)["input_ids"]]


def detokenize(tokenizer: Any, token_ids: Any) -> str:
    """The text of ``token_ids``, special tokens kept (as vLLM's ``/detokenize``); an id
    outside the vocabulary is a 400 naming ``tokens``."""
    if not isinstance(token_ids, list) or not all(
        isinstance(t, int) and not isinstance(t, bool) for t in token_ids
    ):
        raise InvalidRequestError("tokens must be a list of integer token ids.", "tokens")
    size = len(tokenizer)
    bad = [t for t in token_ids if not 0 <= t < size]
    if bad:
        raise InvalidRequestError(
            f"token id(s) {', '.join(map(str, bad[:5]))} are outside the vocabulary "
            f"(0 to {size - 1}).",
            "tokens",
        )
    return str(tokenizer.decode(token_ids))
