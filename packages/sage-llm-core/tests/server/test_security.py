"""Who gets in: API keys, the engine-admin switch, trust_remote_code, CORS and X-Request-Id.

A model-free engine (``ScriptedBackend``) behind real servers on loopback, driven by the
openai client and by httpx the way a browser or a script would send the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from serve_helpers import openai_client

from sage.llm.control_plane import ControlPlaneManager
from sage.llm.server import ServerThread
from sage.llm.server.security import ServerSettings, ServerSettingsError
from sage.llm.testing.control_plane import ScriptedBackend

KEYS = ("first-key", "second-key")
AUTH = {"Authorization": "Bearer first-key"}
ORIGIN = "http://app.example:3000"


@pytest.fixture(scope="module")
def manager() -> Iterator[ControlPlaneManager]:
    cp = ControlPlaneManager("never", load_entry_points=False)
    cp.start_engine("m", engine=ScriptedBackend, served_model_name="s", engine_id="s-1")
    yield cp
    cp.shutdown(timeout=5)


@pytest.fixture(scope="module")
def open_server(manager: ControlPlaneManager) -> Iterator[Any]:
    """The defaults: no key, no engine admin, no CORS."""
    with ServerThread(manager) as server:
        yield server


@pytest.fixture(scope="module")
def keyed(manager: ControlPlaneManager) -> Iterator[Any]:
    """Two keys, engine admin on, CORS for one origin."""
    settings = ServerSettings(api_keys=KEYS, enable_engine_admin=True, allowed_origins=(ORIGIN,))
    with ServerThread(manager, settings=settings) as server:
        yield server


def test_each_key_lets_the_openai_client_in(keyed: Any) -> None:
    for key in KEYS:
        out = openai_client(keyed.url, key).completions.create(model="s", prompt="abc")
        assert out.choices[0].text == "cba"
        assert [m.id for m in openai_client(keyed.url, key).models.list()] == ["s"]


@pytest.mark.parametrize("key", ["wrong-key", "first-ke", "first-key-and-more", "FIRST-KEY"])
def test_a_wrong_key_is_an_authentication_error(keyed: Any, key: str) -> None:
    client = openai_client(keyed.url, key)
    with pytest.raises(openai.AuthenticationError) as info:
        client.completions.create(model="s", prompt="abc")
    assert isinstance(info.value.body, dict)
    assert info.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "first-key"}, {"Authorization": "Basic first-key"}],
    ids=["missing", "no-scheme", "basic"],
)
def test_a_missing_key_is_a_401_with_openai_error_json(keyed: Any, headers: dict[str, str]) -> None:
    for method, path in [("GET", "/v1/models"), ("POST", "/v1/completions"), ("GET", "/status")]:
        response = httpx.request(method, keyed.url + path, headers=headers, json={})
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("authentication_error", "invalid_api_key")
        assert "--api-key" in error["message"]


def test_probes_and_tokenizing_stay_open_with_a_key(keyed: Any) -> None:
    assert httpx.get(keyed.url + "/health").status_code == 200
    assert httpx.get(keyed.url + "/metrics").status_code == 200
    assert httpx.get(keyed.url + "/version").status_code == 200
    # open like vLLM's; the scripted engine has no tokenizer, hence 501 rather than 401
    assert httpx.post(keyed.url + "/tokenize", json={"prompt": "x"}).status_code == 501
    assert httpx.get(keyed.url + "/status", headers=AUTH).status_code == 200


def test_engine_admin_is_off_by_default_and_says_which_flag(open_server: Any) -> None:
    for method, path in [
        ("GET", "/v1/engines"),
        ("POST", "/v1/engines"),
        ("GET", "/v1/engines/s-1"),
        ("POST", "/v1/engines/s-1/stop"),
    ]:
        response = httpx.request(method, open_server.url + path, json={"model": "m"})
        assert response.status_code == 403, path
        error = response.json()["error"]
        assert error["type"] == "permission_error"
        assert "--enable-engine-admin" in error["message"]
    assert httpx.get(open_server.url + "/health").json()["models"] == ["s"]  # still serving


def test_engine_admin_needs_the_key(keyed: Any) -> None:
    assert httpx.get(keyed.url + "/v1/engines").status_code == 401
    stop = httpx.post(keyed.url + "/v1/engines/s-1/stop", json={"drain": True})
    assert stop.status_code == 401
    listed = httpx.get(keyed.url + "/v1/engines", headers=AUTH)
    assert "s-1" in [e["engine_id"] for e in listed.json()["data"]]


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_admin_posts_take_only_json(keyed: Any, content_type: str | None) -> None:
    """What a browser may send cross-origin without a preflight is refused before parsing."""
    headers = dict(AUTH)
    if content_type is not None:
        headers["Content-Type"] = content_type
    body = b'{"model": "m", "engine": "transformers"}'
    for path in ("/v1/engines", "/v1/engines/s-1/stop"):
        response = httpx.post(keyed.url + path, content=body, headers=headers)
        assert response.status_code == 415, path
        assert "application/json" in response.json()["error"]["message"]
    assert httpx.get(keyed.url + "/health").json()["models"] == ["s"]  # nothing was stopped


def test_trust_remote_code_needs_its_own_flag(keyed: Any, manager: ControlPlaneManager) -> None:
    body = {"model": "m", "options": {"trust_remote_code": True}}
    refused = httpx.post(keyed.url + "/v1/engines", json=body, headers=AUTH)
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert (error["param"], error["type"]) == ("options", "permission_error")
    assert "--allow-trust-remote-code" in error["message"]
    allowing = ServerSettings(api_keys=KEYS, enable_engine_admin=True, allow_trust_remote_code=True)
    with ServerThread(manager, settings=allowing) as server:
        passed = httpx.post(server.url + "/v1/engines", json=body, headers=AUTH, timeout=120)
    # past the gate: the engine tried to load model "m" (there is none)
    assert passed.json()["error"]["code"] == "engine_start_failed"
    assert "unknown model 'm'" in passed.json()["error"]["message"]


def test_admin_without_a_key_is_refused_naming_both_flags() -> None:
    with pytest.raises(ServerSettingsError, match="--enable-engine-admin needs --api-key"):
        ServerSettings(enable_engine_admin=True)
    with pytest.raises(ServerSettingsError, match="non-empty"):
        ServerSettings(api_keys=("",))
    with pytest.raises(ServerSettingsError, match="without a path or trailing slash"):
        ServerSettings(allowed_origins=("http://localhost:3000/",))


def preflight(url: str, path: str = "/v1/chat/completions", origin: str = ORIGIN) -> Any:
    return httpx.options(
        url + path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_cors_is_off_by_default(open_server: Any) -> None:
    answer = preflight(open_server.url)
    assert not [h for h in answer.headers if h.lower().startswith("access-control-")]
    plain = httpx.get(open_server.url + "/v1/models", headers={"Origin": ORIGIN})
    assert plain.status_code == 200
    assert "access-control-allow-origin" not in plain.headers


def test_cors_lets_in_only_the_configured_origin(keyed: Any) -> None:
    answer = preflight(keyed.url)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in answer.headers["access-control-allow-headers"].lower()
    other = preflight(keyed.url, origin="http://evil.example")
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    # a 401 is readable by the configured origin's page, and shows the request id
    denied = httpx.get(keyed.url + "/v1/models", headers={"Origin": ORIGIN})
    assert denied.status_code == 401
    assert denied.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in denied.headers["access-control-expose-headers"].lower()


def test_x_request_id_is_echoed_or_made(open_server: Any, keyed: Any) -> None:
    mine = {"X-Request-Id": "trace-42.abc_DEF"}
    for url, path in [
        (open_server.url, "/v1/models"),
        (open_server.url, "/health"),
        (open_server.url, "/v1/nothing"),  # a 404
        (keyed.url, "/v1/models"),  # a 401
    ]:
        assert httpx.get(url + path, headers=mine).headers["x-request-id"] == mine["X-Request-Id"]
        made = httpx.get(url + path).headers["x-request-id"]
        assert len(made) == 32
        assert made != httpx.get(url + path).headers["x-request-id"]
    streamed = httpx.post(
        open_server.url + "/v1/completions",
        json={"model": "s", "prompt": "abc", "stream": True},
        headers=mine,
    )
    assert streamed.headers["x-request-id"] == mine["X-Request-Id"]
    assert "data: [DONE]" in streamed.text


@pytest.mark.parametrize("bad", ["x" * 129, "has space", "tab\there", "caf\u00e9"])
def test_a_malformed_x_request_id_is_a_400_naming_it(open_server: Any, bad: str) -> None:
    response = httpx.get(
        open_server.url + "/v1/models", headers=[("X-Request-Id", bad.encode("utf-8"))]
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "X-Request-Id"
    assert len(response.headers["x-request-id"]) == 32  # a fresh one, not the bad one


def test_version_and_model_retrieve(open_server: Any) -> None:
    from sage.llm import __version__

    assert httpx.get(open_server.url + "/version").json() == {"version": __version__}
    client = openai_client(open_server.url)
    model = client.models.retrieve("s")
    assert (model.id, model.object) == ("s", "model")
    with pytest.raises(openai.NotFoundError, match="served models: s"):
        client.models.retrieve("gpt-9")


def test_an_engine_without_a_tokenizer_answers_501(open_server: Any) -> None:
    for path, body in [("/tokenize", {"prompt": "abc"}), ("/detokenize", {"tokens": [1]})]:
        response = httpx.post(open_server.url + path, json=body)
        assert response.status_code == 501, path
        error = response.json()["error"]
        assert error["type"] == "not_implemented_error"
        assert "scripted" in error["message"]


def test_a_500_carries_the_request_id_too() -> None:
    """The id middleware sits outside Starlette's own error middleware."""

    class Broken(ControlPlaneManager):
        def models(self) -> list[str]:
            raise RuntimeError("a bug")

    cp = Broken("never", load_entry_points=False)
    try:
        with ServerThread(cp) as server:
            response = httpx.get(server.url + "/v1/models", headers={"X-Request-Id": "r-500"})
    finally:
        cp.shutdown()
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "r-500"
