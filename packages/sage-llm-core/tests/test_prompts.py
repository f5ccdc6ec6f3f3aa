"""prompt_token_ids: the one way both engines turn a prompt into token ids."""

from __future__ import annotations

from typing import Any

import pytest

from sage.llm.prompts import PromptError, prompt_token_ids


class FakeTokenizer:
    """Characters as token ids; ``add_special_tokens`` prepends 1 (a BOS)."""

    def __init__(self, chat_template: str | None) -> None:
        self.chat_template = chat_template

    def apply_chat_template(self, messages: list[dict[str, str]], **kwargs: Any) -> str:
        assert kwargs == {"tokenize": False, "add_generation_prompt": True}
        return f"<u>{messages[0]['content']}</u><a>"

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": ([1] if add_special_tokens else []) + [ord(c) for c in text]}


def test_chat_template_by_default_when_there_is_one() -> None:
    ids = prompt_token_ids(FakeTokenizer("tmpl"), "hi")
    assert ids == [ord(c) for c in "<u>hi</u><a>"]  # the template's text, no second BOS
    assert prompt_token_ids(FakeTokenizer("tmpl"), "hi", chat=True) == ids


def test_raw_text_without_template_or_with_chat_false() -> None:
    raw = [1, ord("h"), ord("i")]
    assert prompt_token_ids(FakeTokenizer(None), "hi") == raw
    assert prompt_token_ids(FakeTokenizer("tmpl"), "hi", chat=False) == raw


def test_token_ids_pass_through() -> None:
    assert prompt_token_ids(None, [5, 6]) == [5, 6]


@pytest.mark.parametrize(
    ("tokenizer", "prompt", "chat", "message"),
    [
        (FakeTokenizer(None), "hi", True, "has no chat template"),
        (None, "hi", None, "no tokenizer"),
        (FakeTokenizer(None), [], None, "empty"),
    ],
)
def test_bad_prompts_are_clear_errors(tokenizer: Any, prompt: Any, chat: Any, message: str) -> None:
    with pytest.raises(PromptError, match=message):
        prompt_token_ids(tokenizer, prompt, chat=chat)
