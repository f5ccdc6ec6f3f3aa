"""``/tokenize`` and ``/detokenize`` on the tiny model, with vLLM's request and response shapes.

The ids must be the ones the engine feeds its model: checked against the model's own
tokenizer and against the prompt token counts the completion routes report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_helpers import openai_client

PROMPT = "abc abc abc"
MESSAGES = [{"role": "user", "content": "hello"}]


def post(server: Any, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=30)


def test_a_prompt_tokenizes_as_the_completions_route_does(tiny_server: Any, tiny_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_dir))
    got = post(tiny_server, "/tokenize", {"model": "tiny", "prompt": PROMPT}).json()
    assert got["tokens"] == tokenizer(PROMPT)["input_ids"]
    assert got["count"] == len(got["tokens"])
    assert got["max_model_len"] == tiny_server.manager.engines()["tiny-1"].backend.max_model_len()
    assert isinstance(got["max_model_len"], int)
    done = openai_client(tiny_server.url).completions.create(
        model="tiny", prompt=PROMPT, max_tokens=1
    )
    assert done.usage.prompt_tokens == got["count"]
    bare = post(tiny_server, "/tokenize", {"prompt": PROMPT, "add_special_tokens": False}).json()
    assert bare["tokens"] == tokenizer(PROMPT, add_special_tokens=False)["input_ids"]


def test_messages_tokenize_as_the_chat_route_does(tiny_server: Any) -> None:
    got = post(tiny_server, "/tokenize", {"model": "tiny", "messages": MESSAGES}).json()
    done = openai_client(tiny_server.url).chat.completions.create(
        model="tiny",
        messages=MESSAGES,  # type: ignore[arg-type]
        max_tokens=1,
    )
    assert done.usage is not None
    assert done.usage.prompt_tokens == got["count"]
    without = post(
        tiny_server, "/tokenize", {"messages": MESSAGES, "add_generation_prompt": False}
    ).json()
    assert without["count"] < got["count"]
    assert got["tokens"][: without["count"]] == without["tokens"]


def test_detokenize_inverts_tokenize(tiny_server: Any) -> None:
    ids = post(tiny_server, "/tokenize", {"prompt": PROMPT, "add_special_tokens": False}).json()
    back = post(tiny_server, "/detokenize", {"model": "tiny", "tokens": ids["tokens"]})
    assert back.json() == {"prompt": PROMPT}


@pytest.mark.parametrize(
    ("path", "body", "status", "param"),
    [
        ("/detokenize", {"tokens": [1, 10_000_000]}, 400, "tokens"),
        ("/detokenize", {"tokens": [-1]}, 400, "tokens"),
        ("/detokenize", {"tokens": "abc"}, 400, "tokens"),
        ("/detokenize", {"tokens": [True]}, 400, "tokens"),
        ("/detokenize", {}, 400, "tokens"),
        ("/tokenize", {}, 400, "prompt"),
        ("/tokenize", {"prompt": 5}, 400, "prompt"),
        ("/tokenize", {"prompt": "x", "messages": MESSAGES}, 400, "prompt"),
        ("/tokenize", {"messages": [{"role": "wizard", "content": "x"}]}, 400, "messages"),
        ("/tokenize", {"prompt": "x", "add_special_tokens": "yes"}, 400, "add_special_tokens"),
        ("/tokenize", {"prompt": "x", "colour": "red"}, 400, "colour"),
        ("/tokenize", {"prompt": "x", "model": "gpt-9"}, 404, None),
    ],
)
def test_bad_tokenize_requests_are_errors_naming_the_field(
    tiny_server: Any, path: str, body: dict[str, Any], status: int, param: str | None
) -> None:
    response = post(tiny_server, path, body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param
