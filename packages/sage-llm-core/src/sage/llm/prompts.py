"""How a text prompt becomes token ids, for every engine.

Both engines (the reference engine and vLLM) call :func:`prompt_token_ids` with the model's
own Hugging Face tokenizer, so the same prompt reaches both models as the same token ids:
wrapped in the model's chat template by default when it has one (an instruct model answering a
bare string often just ends its turn), raw with ``chat=False``. vLLM is then handed the ids,
not the text, so its own prompt processing cannot make the two engines disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class PromptError(ValueError):
    """A prompt that cannot be turned into token ids (empty, or chat without a template)."""


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def prompt_token_ids(
    tokenizer: Any,
    prompt: str | Sequence[int],
    *,
    chat: bool | None = None,
    model_name: str = "this model",
) -> list[int]:
    """Token ids for ``prompt`` (a string, or token ids passed through unchanged).

    ``chat=None`` applies the tokenizer's chat template when it has one (one user message,
    then the assistant's turn opened); ``True`` requires a template; ``False`` tokenizes the
    text as is, with the tokenizer's own special tokens (BOS where the model uses one).
    """
    if not isinstance(prompt, str):
        ids = [int(t) for t in prompt]
        if not ids:
            raise PromptError("the prompt is empty; pass at least one token id.")
        return ids
    if tokenizer is None:
        raise PromptError("this engine has no tokenizer; pass the prompt as token ids.")
    template = has_chat_template(tokenizer)
    if chat and not template:
        raise PromptError(
            f"{model_name} has no chat template; generate without chat=True (--no-chat)."
        )
    if chat or (chat is None and template):
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    else:
        ids = tokenizer(prompt)["input_ids"]
    if not ids:
        raise PromptError("the prompt is empty; pass some text.")
    return [int(t) for t in ids]
