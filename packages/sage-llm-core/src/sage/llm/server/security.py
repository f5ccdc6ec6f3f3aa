"""Who may use the server: API keys, the engine-admin switch, CORS and request ids.

The server runs models and, through the engine-admin routes, loads new ones, so it must let
in only its users. A web page the user happens to open is not one of them: a browser sends a
*simple* cross-origin request (``POST`` with ``Content-Type: text/plain``, no custom headers)
without asking the server first, so without these checks any page could stop an engine or
start one from any hub id. The defences, all off-by-default-safe:

- ``api_keys``: every ``/v1`` route and ``/status`` need ``Authorization: Bearer KEY``
  (compared in constant time); a browser cannot add that header cross-origin without a CORS
  preflight the server does not answer unless told to.
- ``enable_engine_admin``: the routes that start and stop engines exist only when asked for,
  and only together with a key; their ``POST`` takes only ``application/json`` (never a
  simple request).
- ``allow_trust_remote_code``: an engine started over HTTP may not run a repository's code
  unless the operator allowed it.
- CORS is off unless ``allowed_origins`` names the origins to let in.

The middleware here is pure ASGI (no ``BaseHTTPMiddleware``), so streaming responses and the
cancellation of a disconnected client's request pass through untouched.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sage.llm.control_plane.errors import ControlPlaneError
from sage.llm.server import protocol

API_KEY_ENV = "SAGE_LLM_API_KEY"
REQUEST_ID_HEADER = "X-Request-Id"
MAX_REQUEST_ID = 128
_REQUEST_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_REQUEST_ID}}}")  # visible ASCII, no spaces
_ORIGIN = re.compile(r"https?://[^/\s]+")


class ServerSettingsError(ValueError):
    """Settings that would make an unsafe or broken server (the message names the flags)."""


class ForbiddenError(ControlPlaneError):
    """The server was not started with the flag this request needs (the message names it)."""

    status = 403
    code = "forbidden"

    def __init__(self, message: str, param: str | None = None) -> None:
        self.param = param
        super().__init__(message)


class UnsupportedMediaTypeError(ControlPlaneError):
    """An engine-admin ``POST`` without ``Content-Type: application/json``."""

    status = 415
    code = "unsupported_media_type"


@dataclass(frozen=True)
class ServerSettings:
    """How open the server is; ``create_app(manager, settings=...)`` and ``sage-llm serve``.

    ``api_keys``: accepted bearer tokens (any one of them); empty: no authentication.
    ``enable_engine_admin``: serve ``/v1/engines`` (start/stop engines); needs a key.
    ``allow_trust_remote_code``: let ``POST /v1/engines`` set ``options.trust_remote_code``.
    ``allowed_origins``: origins a browser may call from (``"*"``: any); empty: CORS off.
    ``allowed_methods``, ``allowed_headers``, ``allow_credentials``: the rest of CORS, used
    only when ``allowed_origins`` is set.
    """

    api_keys: tuple[str, ...] = ()
    enable_engine_admin: bool = False
    allow_trust_remote_code: bool = False
    allowed_origins: tuple[str, ...] = ()
    allowed_methods: tuple[str, ...] = ("*",)
    allowed_headers: tuple[str, ...] = ("*",)
    allow_credentials: bool = False
    _key_digests: tuple[bytes, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("api_keys", "allowed_origins", "allowed_methods", "allowed_headers"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise ServerSettingsError(f"{name} must be a list of strings, not one string.")
            object.__setattr__(self, name, tuple(value))
        if any(not isinstance(k, str) or not k.strip() for k in self.api_keys):
            raise ServerSettingsError("an API key must be a non-empty string (--api-key).")
        if self.enable_engine_admin and not self.api_keys:
            raise ServerSettingsError(
                "--enable-engine-admin needs --api-key (or SAGE_LLM_API_KEY): the engine-admin "
                "routes start and stop engines, so only holders of a key may call them."
            )
        for origin in self.allowed_origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ServerSettingsError(
                    f"--allowed-origins: {origin!r} is not an origin; write scheme://host[:port] "
                    "without a path or trailing slash (http://localhost:3000), or '*'."
                )
        digests = tuple(hashlib.sha256(k.encode()).digest() for k in self.api_keys)
        object.__setattr__(self, "_key_digests", digests)

    @property
    def cors(self) -> bool:
        return bool(self.allowed_origins)

    def key_matches(self, token: str) -> bool:
        """Whether ``token`` is one of the keys, in time independent of where they differ.

        Digests have one length, so ``compare_digest`` does not leak a key's length either,
        and every key is compared (no early exit that tells which one came close)."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        found = False
        for key in self._key_digests:
            found |= secrets.compare_digest(digest, key)
        return found

    def check_engine_options(self, options: Mapping[str, Any]) -> None:
        """Refuse ``trust_remote_code`` in an HTTP-started engine unless it was allowed."""
        if options.get("trust_remote_code") and not self.allow_trust_remote_code:
            raise ForbiddenError(
                "options.trust_remote_code would run the model repository's Python code on "
                "this server; start sage-llm serve with --allow-trust-remote-code to permit it.",
                "options",
            )


def parse_list_option(values: Iterable[str], name: str) -> tuple[str, ...]:
    """``--allowed-origins '["a", "b"]'`` or ``--allowed-origins a --allowed-origins b``."""
    out: list[str] = []
    for value in values:
        text = value.strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except ValueError as exc:
                raise ServerSettingsError(f"{name}: {value!r} is not a JSON list ({exc}).") from exc
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise ServerSettingsError(f"{name}: {value!r} must be a JSON list of strings.")
            out.extend(items)
        elif text:
            out.append(text)
    return tuple(out)


def middleware(settings: ServerSettings) -> list[Middleware]:
    """The app's middleware, outermost first: CORS (when configured), then authentication.

    CORS sits outside authentication so that a preflight is answered without a key and a 401
    still carries the CORS headers a configured browser client needs to read it."""
    stack: list[Middleware] = []
    if settings.cors:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.allowed_origins),
                allow_methods=list(settings.allowed_methods),
                allow_headers=list(settings.allowed_headers),
                allow_credentials=settings.allow_credentials,
                expose_headers=[REQUEST_ID_HEADER],
            )
        )
    if settings.api_keys:
        stack.append(Middleware(AuthenticationMiddleware, settings=settings))
    return stack


class App(Starlette):
    """Starlette with :class:`RequestIdMiddleware` outside everything, Starlette's own error
    middleware included, so that a 500 carries its ``X-Request-Id`` too."""

    def build_middleware_stack(self) -> ASGIApp:
        return RequestIdMiddleware(super().build_middleware_stack())


def guarded(path: str) -> bool:
    """Whether ``path`` needs the key: the ``/v1`` API and ``/status`` (engine details).

    Open, as in vLLM: ``/health`` and ``/metrics`` (load balancers and scrapers carry no key),
    ``/version``, ``/tokenize`` and ``/detokenize`` (no generation, no engine control)."""
    return path == "/v1" or path.startswith("/v1/") or path == "/status"


class AuthenticationMiddleware:
    """401 with OpenAI's error JSON unless ``Authorization: Bearer KEY`` holds a key.

    ``OPTIONS`` passes (a CORS preflight carries no credentials; the route answers it or
    405s), as in vLLM."""

    def __init__(self, app: ASGIApp, settings: ServerSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if guarded(path) and not self._authorized(Headers(scope=scope)):
            body = protocol.error_body(
                "missing or wrong API key: send Authorization: Bearer <key> (the server's "
                "--api-key).",
                401,
                "invalid_api_key",
            )
            headers = {"WWW-Authenticate": "Bearer"}
            await JSONResponse(body, status_code=401, headers=headers)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, headers: Headers) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.settings.key_matches(token.strip())


class RequestIdMiddleware:
    """Echo the client's ``X-Request-Id`` on the response, or make one (uuid4 hex).

    A client's id must be 1-128 visible ASCII characters: anything else (control characters,
    spaces, a megabyte of header) is a 400 that says so, rather than an id silently replaced
    that the client would then look for in vain."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(REQUEST_ID_HEADER)
        if given is not None and not _REQUEST_ID.fullmatch(given):
            rid = uuid.uuid4().hex
            body = protocol.error_body(
                f"{REQUEST_ID_HEADER} must be 1-{MAX_REQUEST_ID} visible ASCII characters "
                "(no spaces or control characters); leave it out to get one made for you.",
                400,
                "invalid_request",
                REQUEST_ID_HEADER,
            )
            response = JSONResponse(body, status_code=400, headers={REQUEST_ID_HEADER: rid})
            await response(scope, receive, send)
            return
        rid = given or uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                if REQUEST_ID_HEADER not in headers:
                    headers.append(REQUEST_ID_HEADER, rid)
            await send(message)

        await self.app(scope, receive, send_with_id)


def require_json(request: Request) -> None:
    """415 unless the body is declared JSON: a browser's cross-origin *simple* request can
    only send ``text/plain``, form types or no type, so this forces a CORS preflight."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise UnsupportedMediaTypeError(
            f"send the body as JSON with Content-Type: application/json (got "
            f"{ctype or 'no Content-Type'})."
        )


def admin_disabled() -> ForbiddenError:
    return ForbiddenError(
        "engine administration is off; start sage-llm serve with --enable-engine-admin "
        "(and --api-key) to start and stop engines over HTTP."
    )


__all__ = [
    "API_KEY_ENV",
    "App",
    "AuthenticationMiddleware",
    "ForbiddenError",
    "RequestIdMiddleware",
    "ServerSettings",
    "ServerSettingsError",
    "UnsupportedMediaTypeError",
    "middleware",
    "parse_list_option",
]
