"""Property-based fuzzing of the OpenAI routes: generated bodies against a real server on
loopback, on a tiny model, streamed and not.

Two kinds of bodies. Schema-shaped ones draw every field from its valid values or its wrong
ones (wrong type, out of range, text with a lone surrogate, token ids outside the vocabulary,
a prompt longer than the context...), so the test knows which fields are wrong; arbitrary
ones are any JSON (or bytes) with any keys. What must hold for every body:

* no 5xx, ever;
* every 4xx is OpenAI's error JSON with a message; for a schema-shaped body, a 400 names one
  of its wrong fields as ``param`` (a 404 only for an unknown model);
* a schema-shaped body with no wrong field gets its completion (no stream error), and one
  with a wrong field never does;
* afterwards ``/health`` is 200 and a known prompt gives the same greedy text as before.

Reproducible: hypothesis is derandomized (the same bodies on every run) and keeps no
database. ``pytest -s`` prints the number of bodies tried and of 5xx answers.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sage.llm.control_plane import ControlPlaneManager
from sage.llm.server import ServerThread

FUZZ = settings(
    derandomize=True,  # the same bodies on every run: CI is reproducible
    database=None,
    deadline=None,  # a request's time depends on the machine, not on the body
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=False,
)
EXAMPLES, BATCH = 100, 8
"""Per test: 100 examples of 8 bodies sent together, 2,400 bodies in the three tests."""
COUNTS: collections.Counter[str] = collections.Counter()
VOCAB = 80  # save_tiny_model(..., 80): the tiny model's embedding rows
KNOWN = {"model": "tiny", "prompt": "abc abc abc", "max_tokens": 8, "temperature": 0}
ABSENT = object()
"""A field left out of the body."""


@pytest.fixture(scope="module")
def client(tiny_dir: Path) -> Iterator[httpx.Client]:
    """A server as ``tiny_server`` (ngram, adaptive), chat requests limited to 4 tokens by
    default so that thousands of bodies run in seconds."""
    cp = ControlPlaneManager("adaptive", load_entry_points=False)
    cp.start_engine(str(tiny_dir), "ngram:n=2", served_model_name="tiny")
    with (
        ServerThread(cp, default_max_tokens=4) as server,
        httpx.Client(base_url=server.url, timeout=60) as http,
    ):
        http.known = completion_text(http)  # type: ignore[attr-defined]
        yield http
    cp.shutdown()
    print(f"\nfuzz: {COUNTS['bodies']} bodies tried, {COUNTS['5xx']} 5xx; {dict(COUNTS)}")


def completion_text(http: httpx.Client) -> str:
    response = http.post("/v1/completions", json=KNOWN)
    assert response.status_code == 200, response.text
    text: str = response.json()["choices"][0]["text"]
    return text


def still_serving(http: httpx.Client) -> None:
    assert http.get("/health").status_code == 200
    assert completion_text(http) == http.known  # type: ignore[attr-defined]


# -- values -------------------------------------------------------------------------------

text = st.text(st.characters(codec="utf-8"), max_size=12)
surrogate = st.builds(lambda a, b: f"{a}\ud800{b}", text, text)
words = st.text("abcdefgh xyz.", min_size=1, max_size=24)
token_ids = st.lists(st.integers(0, VOCAB - 1), min_size=1, max_size=16)
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),  # NaN and infinities too: Python's json reads them
    text,
    surrogate,
)
any_json = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)


def one(*values: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from(values)


def message(role: Any, content: Any) -> dict[str, Any]:
    return {"role": role, "content": content}


roles = one("system", "user", "assistant", "developer", "tool")
too_long = "abc " * 300  # 1200 tokens: more than the tiny model's 1024 positions

COMMON: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    # name: (valid values, wrong values)
    "model": (one("tiny", None), one("gpt-9", 5, [], "ti\ud800ny")),
    "temperature": (
        st.floats(0, 2) | one(0, 1, None),
        one(-0.5, 2.5, "1", True, float("nan"), float("inf"), 10**10),
    ),
    "top_p": (
        st.floats(0, 1, exclude_min=True) | one(None),
        one(0, 1.5, -1, "x", float("nan"), False),
    ),
    "top_k": (st.integers(1, 100) | one(2**40, None), one(0, -1, 2**63, 1.0, "5", True)),
    "seed": (
        st.integers(0, 2**63 - 1) | one(None),
        one(-1, 2**63, 2**64, 1.5, "1", True),
    ),
    "stop": (
        one(None) | words | st.lists(words, min_size=1, max_size=4),
        one(5, "", [""], ["a"] * 5, [5], ["\ud800"], {"a": 1}, True),
    ),
    "n": (one(1, None), one(2, 0, "1", True, 1.0)),
    "user": (text | one(None), one(5, "\ud800", [])),
    "presence_penalty": (one(0, 0.0, None), one(0.5, "0")),
    "frequency_penalty": (one(0, 0.0, None), one(-1, [])),
    "logit_bias": (one(None, {}), one({"1": 5})),
    "logprobs": (one(None, False), one(True, 3)),
}
COMPLETION: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    **COMMON,
    "prompt": (
        words | token_ids | st.builds(lambda p: [p], words) | st.builds(lambda p: [p], token_ids),
        one(
            ABSENT,
            "",
            [],
            5,
            True,
            None,
            [-5],
            [999999999],
            [2**70],
            [VOCAB],
            "\ud800 hi",
            ["a", "b"],
            [1, "a"],
            [[]],
            {"a": 1},
            too_long,
        ),
    ),
    "max_tokens": (st.integers(1, 4), one(0, -1, 2**64, 5000, 1.5, "4", True)),
    "echo": (one(None, False), one(True)),
    "best_of": (one(None, 1), one(2)),
    "suffix": (one(None), one("x")),
}
CHAT: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    **COMMON,
    "messages": (
        st.lists(st.builds(message, roles, text), min_size=1, max_size=3),
        one(
            ABSENT,
            [],
            "hi",
            None,
            [5],
            {"role": "user", "content": "x"},
            [message("robot", "x")],
            [message("user", 5)],
            [message("user", None)],
            [message("user", "\ud800")],
            [{"role": "user", "content": "x", "name": "\udfff"}],
            [message("user", too_long)],
        ),
    ),
    # one of the two limits per body (with both, max_completion_tokens wins, as in vLLM)
    "limit": (st.integers(1, 4) | one(None), one(0, -1, 2**64, 5000, 1.5, "4", True)),
    "response_format": (one(None, {"type": "text"}), one({"type": "json_object"}, "text", 5)),
    "tools": (one(None, []), one([{}], [{"type": "function"}])),
    "tool_choice": (one(None, "none"), one("auto", "required")),
    "parallel_tool_calls": (one(None, True, False), one("yes", 1)),
    "top_logprobs": (one(None), one(2)),
}
REQUIRED = {"prompt", "messages", "max_tokens"}
"""Always sent (a right max_tokens keeps each completion to a few tokens; the route's default
of 16 would make the run slower)."""


@st.composite
def shaped(draw: st.DrawFn, fields: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """A body and the names of its wrong fields: all right, one wrong, or a few wrong."""
    mode = draw(one("right", "right", "one wrong", "some wrong"))
    wrong_one = draw(st.sampled_from(sorted(fields))) if mode == "one wrong" else None
    body: dict[str, Any] = {}
    wrong: set[str] = set()
    for name, (good, bad) in fields.items():
        is_bad = name == wrong_one or (mode == "some wrong" and draw(st.integers(0, 3)) == 0)
        if not is_bad and name not in REQUIRED and draw(st.booleans()):
            continue  # left out: every optional field has a default
        value = draw(bad if is_bad else good)
        if name == "limit":
            name = draw(one("max_tokens", "max_completion_tokens"))
        if is_bad:
            wrong.add(name)
        if value is not ABSENT:
            body[name] = value
    stream = draw(one(ABSENT, True, False, None, "yes", 1))
    if stream is not ABSENT:
        body["stream"] = stream
    if not any(stream is ok for ok in (ABSENT, True, False, None)):
        wrong.add("stream")  # 1 is not true
    options = draw(one(ABSENT, None, {}, {"include_usage": True}, {"include_usage": "yes"}, 5))
    if options is not ABSENT:
        body["stream_options"] = options
        if options is not None and (
            stream is not True or options not in ({}, {"include_usage": True})
        ):
            wrong.add("stream_options")
    return body, wrong


def post_all(http: httpx.Client, path: str, contents: list[bytes]) -> list[httpx.Response]:
    """POST the bodies at once (a loopback round trip is mostly waiting: together they take
    the time of one), counting the answers."""

    def post(content: bytes) -> httpx.Response:
        return http.post(path, content=content, headers={"content-type": "application/json"})

    with ThreadPoolExecutor(len(contents)) as pool:
        responses = list(pool.map(post, contents))
    for response in responses:
        COUNTS["bodies"] += 1
        COUNTS[f"{response.status_code // 100}xx"] += 1
        event(f"HTTP {response.status_code}")
    return responses


def check_answer(response: httpx.Response, wrong: set[str] | None) -> None:
    """The invariants of the module docstring (``wrong`` None: nothing known of the body)."""
    status = response.status_code
    assert status < 500, f"{status}: {response.text}"
    if status >= 400:
        error = response.json()["error"]
        assert isinstance(error["message"], str), response.text
        assert error["message"], response.text
        assert isinstance(error["type"], str), response.text
        assert "param" in error, response.text
        assert "Traceback" not in error["message"]
        if wrong is not None:
            if status == 404:
                assert "model" in wrong, response.text
            else:
                assert status == 400, response.text
                assert error["param"] in wrong, (error["param"], wrong, response.text)
        return
    assert status == 200, response.text
    assert not wrong, f"a body with wrong {sorted(wrong or ())} was accepted"
    if response.headers["content-type"].startswith("text/event-stream"):
        events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]", response.text
        for data in events[:-1]:
            assert "error" not in json.loads(data), data
    else:
        assert response.json()["choices"], response.text


@settings(FUZZ, max_examples=EXAMPLES)
@given(cases=st.lists(shaped(COMPLETION), min_size=BATCH, max_size=BATCH))
def test_schema_shaped_completion_bodies(
    client: httpx.Client, cases: list[tuple[dict[str, Any], set[str]]]
) -> None:
    contents = [json.dumps(body).encode() for body, _ in cases]
    for response, (_, wrong) in zip(
        post_all(client, "/v1/completions", contents), cases, strict=True
    ):
        check_answer(response, wrong)


@settings(FUZZ, max_examples=EXAMPLES)
@given(cases=st.lists(shaped(CHAT), min_size=BATCH, max_size=BATCH))
def test_schema_shaped_chat_bodies(
    client: httpx.Client, cases: list[tuple[dict[str, Any], set[str]]]
) -> None:
    contents = [json.dumps(body).encode() for body, _ in cases]
    for response, (_, wrong) in zip(
        post_all(client, "/v1/chat/completions", contents), cases, strict=True
    ):
        check_answer(response, wrong)


field_names = one(
    *sorted((set(COMPLETION) | set(CHAT) | {"max_completion_tokens", "stream_options"}) - {"limit"})
)


def arbitrary(path: str) -> st.SearchStrategy[bytes]:
    """Any JSON or bytes; or any fields around a served model and a prompt of any value."""
    key = "prompt" if path == "/v1/completions" else "messages"
    around = st.builds(
        lambda extra, value: {**extra, "model": "tiny", key: value},
        st.dictionaries(field_names, any_json, max_size=4),
        any_json,
    )
    bodies = any_json | st.dictionaries(field_names | text, any_json, max_size=6) | around
    return bodies.map(lambda b: json.dumps(b).encode()) | st.binary(max_size=40)


@settings(FUZZ, max_examples=EXAMPLES)
@given(path=one("/v1/completions", "/v1/chat/completions"), data=st.data())
def test_arbitrary_bodies(client: httpx.Client, path: str, data: st.DataObject) -> None:
    bodies = data.draw(st.lists(arbitrary(path), min_size=BATCH, max_size=BATCH), label="bodies")
    for response in post_all(client, path, bodies):
        check_answer(response, None)


def test_the_engine_serves_as_before_after_the_fuzzing(client: httpx.Client) -> None:
    still_serving(client)
    assert COUNTS["5xx"] == 0
