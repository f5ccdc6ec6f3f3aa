"""The findings of a hostile-client test, each as a regression test against a real server.

Every request here once ended the engine (every later request got 503), answered 500 with a
reset connection, or was accepted silently; now each gets a 400 naming the field, before any
byte of a stream, and the engine keeps serving the same greedy text.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

KNOWN = {"model": "tiny", "prompt": "abc abc abc", "max_tokens": 8, "temperature": 0}


def greedy_text(url: str) -> str:
    response = httpx.post(url + "/v1/completions", json=KNOWN, timeout=60)
    assert response.status_code == 200, response.text
    text: str = response.json()["choices"][0]["text"]
    return text


@pytest.fixture(scope="module")
def before(tiny_server: Any) -> str:
    return greedy_text(tiny_server.url)


def post_raw(url: str, path: str, body: str) -> httpx.Response:
    """``body`` as written (``"\\ud800"`` stays a JSON escape: a lone surrogate once parsed)."""
    headers = {"content-type": "application/json"}
    return httpx.post(url + path, content=body.encode(), headers=headers, timeout=60)


CASES = [
    # (route, raw JSON body, field named)
    ("/v1/completions", '{"model": "tiny", "prompt": [999999999]}', "prompt"),
    ("/v1/completions", '{"model": "tiny", "prompt": [-5]}', "prompt"),
    ("/v1/completions", '{"model": "tiny", "prompt": [80]}', "prompt"),
    ("/v1/completions", '{"model": "tiny", "prompt": "\\ud800 hi"}', "prompt"),
    (
        "/v1/chat/completions",
        '{"model": "tiny", "messages": [{"role": "user", "content": "\\ud800 hi"}]}',
        "messages",
    ),
    ("/v1/completions", '{"model": "tiny", "prompt": 5}', "prompt"),
    ("/v1/completions", '{"model": "tiny", "prompt": true}', "prompt"),
    ("/v1/completions", '{"model": "tiny", "prompt": "x", "stop": 5}', "stop"),
    ("/v1/completions", '{"model": "tiny", "prompt": "x", "stop": [""]}', "stop"),
    ("/v1/completions", '{"model": "tiny", "prompt": "x", "stop": ["\\udfff"]}', "stop"),
    ("/v1/completions", '{"model": "tiny", "prompt": "x", "seed": 18446744073709551616}', "seed"),
    ("/v1/completions", '{"model": "tiny", "prompt": [1180591620717411303424]}', "prompt"),
    ("/v1/completions", '{"model": "tiny", "prompt": "x", "temperature": NaN}', "temperature"),
    (
        "/v1/completions",
        '{"model": "tiny", "prompt": "x", "stream_options": {"include_usage": true}}',
        "stream_options",
    ),
    ("/v1/completions", '{"model": "tiny", "prompt": "x", "max_tokens": 5000}', "max_tokens"),
    (
        "/v1/chat/completions",
        '{"model": "tiny", "messages": [{"role": "user", "content": "x"}], '
        '"max_completion_tokens": 5000}',
        "max_completion_tokens",
    ),
    ("/v1/completions", '{"model": "tiny", "prompt": "x", "\\ud800": 1}', "\\ud800"),
]


@pytest.mark.parametrize(("path", "body", "param"), CASES)
@pytest.mark.parametrize("stream", [False, True])
def test_a_hostile_request_is_a_400_naming_the_field_and_the_engine_goes_on(
    tiny_server: Any, before: str, path: str, body: str, param: str, stream: bool
) -> None:
    if stream and '"stream_options"' not in body:
        body = body[:-1] + ', "stream": true}'
    response = post_raw(tiny_server.url, path, body)
    assert response.status_code == 400, response.text  # before any byte of a stream
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert error["message"]
    assert httpx.get(tiny_server.url + "/health").status_code == 200
    assert greedy_text(tiny_server.url) == before


def test_a_prompt_longer_than_the_context_is_refused_before_the_stream(tiny_server: Any) -> None:
    body = {"model": "tiny", "prompt": "abc " * 300, "max_tokens": 4, "stream": True}
    with httpx.stream("POST", tiny_server.url + "/v1/completions", json=body) as response:
        assert response.status_code == 400
        response.read()
    error = response.json()["error"]
    assert error["param"] == "prompt"
    assert "context is 1024 tokens" in error["message"]


def test_json_nested_too_deeply_is_a_400(tiny_server: Any) -> None:
    response = post_raw(tiny_server.url, "/v1/completions", "[" * 100_000 + "]" * 100_000)
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]["message"]
