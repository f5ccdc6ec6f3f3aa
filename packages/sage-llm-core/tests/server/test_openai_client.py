"""The official openai client against the server on a tiny model: the routes a user calls."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from click.testing import CliRunner
from serve_helpers import openai_client

from sage.llm.cli.main import cli

PROMPT = "abc abc abc abc"
MESSAGES = [{"role": "user", "content": PROMPT}]


def cli_generate(model_dir: Path, *extra: str) -> dict[str, Any]:
    args = ["generate", PROMPT, "--model", str(model_dir), "--strategy", "none"]
    result = CliRunner().invoke(cli, [*args, "--max-tokens", "20", "--json", *extra])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_models_lists_the_served_name(tiny_server: Any) -> None:
    assert [m.id for m in openai_client(tiny_server.url).models.list()] == ["tiny"]


def test_completion_is_plain_greedy_streamed_or_not(tiny_server: Any, tiny_dir: Path) -> None:
    client = openai_client(tiny_server.url)
    expected = cli_generate(tiny_dir, "--no-chat")
    done = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=20, temperature=0)
    assert done.choices[0].text == expected["text"]
    assert done.usage is not None
    assert done.usage.completion_tokens == len(expected["token_ids"])
    assert done.choices[0].finish_reason == "length"
    stream = client.completions.create(
        model="tiny", prompt=PROMPT, max_tokens=20, temperature=0, stream=True
    )
    assert "".join(chunk.choices[0].text for chunk in stream) == expected["text"]


def test_chat_is_plain_greedy_streamed_or_not(tiny_server: Any, tiny_dir: Path) -> None:
    client = openai_client(tiny_server.url)
    expected = cli_generate(tiny_dir)  # generate applies the chat template by default
    done = client.chat.completions.create(
        model="tiny",
        messages=MESSAGES,
        max_tokens=20,
        temperature=0,  # type: ignore[arg-type]
    )
    assert done.choices[0].message.content == expected["text"]
    assert done.choices[0].message.role == "assistant"
    stream = client.chat.completions.create(
        model="tiny",
        messages=MESSAGES,
        max_tokens=20,
        temperature=0,
        stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected["text"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(expected["token_ids"])


def test_concurrent_clients_each_get_the_greedy_answer(tiny_server: Any) -> None:
    client = openai_client(tiny_server.url)
    prompts = ["abc abc abc", "hello hello", "xyz xyz xyz", "the cat the"] * 2

    def ask(prompt: str) -> str:
        out = client.completions.create(model="tiny", prompt=prompt, max_tokens=12, temperature=0)
        return out.choices[0].text

    alone = {p: ask(p) for p in set(prompts)}
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(ask, prompts))
    assert together == [alone[p] for p in prompts]


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"n": 2}, "n"),
        ({"temperature": 3.5}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"top_p": 0}, "top_p"),
        ({"logprobs": 3}, "logprobs"),
        ({"echo": True}, "echo"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"prompt": ["one", "two"]}, "prompt"),
        ({"extra_body": {"colour": "red"}}, "colour"),
    ],
)
def test_bad_parameters_get_an_openai_400_naming_them(
    tiny_server: Any, kwargs: dict[str, Any], param: str
) -> None:
    client = openai_client(tiny_server.url)
    call = {"model": "tiny", "prompt": PROMPT, "max_tokens": 4, **kwargs}
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(**call)
    body = info.value.body
    assert isinstance(body, dict)
    assert (body["type"], body["param"]) == ("invalid_request_error", param)


def test_unknown_model_is_a_404(tiny_server: Any) -> None:
    with pytest.raises(openai.NotFoundError, match="served models: tiny"):
        openai_client(tiny_server.url).completions.create(model="gpt-9", prompt="x", max_tokens=2)


@pytest.mark.parametrize(
    ("method", "path", "content", "status"),
    [
        ("POST", "/v1/completions", b"{not json", 400),
        ("POST", "/v1/completions", b"[1, 2]", 400),
        ("POST", "/v1/chat/completions", b'{"model": "tiny"}', 400),
        (
            "POST",
            "/v1/chat/completions",
            b'{"messages": [{"role": "user", "content": "x"}], "tools": [{}]}',
            400,
        ),
        ("GET", "/v1/completions", b"", 405),
        ("GET", "/v1/nothing", b"", 404),
        ("GET", "/v1/engines/nope", b"", 403),  # engine admin is off by default
    ],
)
def test_malformed_requests_get_error_json_not_a_traceback(
    tiny_server: Any, method: str, path: str, content: bytes, status: int
) -> None:
    response = httpx.request(method, tiny_server.url + path, content=content)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"]
    assert error["type"]
    assert "Traceback" not in response.text


def test_health_status_and_metrics(tiny_server: Any) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    openai_client(tiny_server.url).completions.create(model="tiny", prompt="ab", max_tokens=3)
    assert httpx.get(tiny_server.url + "/health").json() == {"status": "ok", "models": ["tiny"]}
    status = httpx.get(tiny_server.url + "/status").json()
    assert status["engines"][0]["metrics"]["requests"]["ok"] >= 1
    text = httpx.get(tiny_server.url + "/metrics").text
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"sage_llm_requests", "sage_llm_acceptance_rate", "sage_llm_latency_seconds"} <= names


def test_engine_management_routes(tiny_server: Any, tiny_dir: Path) -> None:
    from sage.llm.server import ServerThread
    from sage.llm.server.security import ServerSettings

    settings = ServerSettings(api_keys=("k",), enable_engine_admin=True)
    with (
        ServerThread(tiny_server.manager, settings=settings) as admin,
        httpx.Client(headers={"Authorization": "Bearer k"}) as client,
    ):
        engine_management(admin.url, client, tiny_dir)


def engine_management(url: str, http: httpx.Client, tiny_dir: Path) -> None:
    """Start, list, use and stop an engine over HTTP; bad starts are clear errors."""
    started = http.post(
        url + "/v1/engines",
        json={"model": str(tiny_dir), "strategy": "none", "served_model_name": "tiny-b"},
        timeout=120,
    )
    assert started.status_code == 201, started.text
    eid = started.json()["engine_id"]
    assert {e["engine_id"] for e in http.get(url + "/v1/engines").json()["data"]} >= {
        "tiny-1",
        eid,
    }
    out = openai_client(url, "k").completions.create(model="tiny-b", prompt="ab", max_tokens=3)
    assert out.sage_llm["engine_id"] == eid  # type: ignore[attr-defined]
    stopped = http.post(url + f"/v1/engines/{eid}/stop", json={"drain": True}, timeout=60)
    assert stopped.json()["state"] == "stopped"
    bad = http.post(url + "/v1/engines", json={"model": "/no/such/model"}, timeout=60)
    assert bad.status_code == 500
    assert bad.json()["error"]["code"] == "engine_start_failed"
    assert "Traceback" not in bad.text
    unknown = http.post(url + "/v1/engines", json={"model": "x", "gpu": 1})
    assert (unknown.status_code, unknown.json()["error"]["param"]) == (400, "gpu")
