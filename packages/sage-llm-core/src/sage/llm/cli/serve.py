"""``sage-llm serve``: an OpenAI-compatible server with a speculative strategy and a policy.

::

    sage-llm serve --model qwen2.5-coder-0.5b-instruct --strategy ngram --policy adaptive

Binds 127.0.0.1 by default. ``--api-key`` (or ``SAGE_LLM_API_KEY``) makes every ``/v1`` route
need ``Authorization: Bearer KEY``; binding another interface without one is warned about.
Starting and stopping engines over HTTP needs ``--enable-engine-admin`` (and a key); CORS is
off unless ``--allowed-origins`` is given (docs/control-plane.md, "Security"). While
serving, each engine's numbers are logged every ``--status-interval`` seconds when it served
something, and are at ``/status`` (JSON) and ``/metrics`` (Prometheus). SIGTERM or Ctrl-C
drains the server for up to ``--shutdown-timeout`` seconds, stops the engines and exits 0.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import click

from sage.llm.cli.options import weight_layout_option
from sage.llm.known import DEFAULT_STRATEGY

POLICIES = ("adaptive", "always", "never")


def _engine_arg(values: tuple[str, ...]) -> dict[str, Any]:
    """``--engine-arg key=value`` pairs; values are JSON when they parse (``2``, ``true``)."""
    import json

    options: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(
                f"expected KEY=VALUE, got {item!r}.", param_hint="--engine-arg"
            )
        try:
            options[key.strip()] = json.loads(raw)
        except ValueError:
            options[key.strip()] = raw
    return options


@click.command()
@click.option(
    "--model",
    "-m",
    default=None,
    help="Model pack, local directory or hub id (default: the default pack).",
)
@click.option("--served-model-name", default=None, help="The name clients use (default: --model).")
@click.option(
    "--strategy",
    "-s",
    default=DEFAULT_STRATEGY,
    show_default=True,
    help="Strategy string, or 'none'.",
)
@click.option(
    "--engine",
    type=click.Choice(["transformers", "vllm"]),
    default="transformers",
    show_default=True,
)
@click.option(
    "--policy",
    default="adaptive",
    show_default=True,
    help=f"Scheduling policy: {', '.join(POLICIES)} or a plugin's.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind (loopback by default).",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--max-queue",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Waiting requests per engine before 429 overloaded.",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds a request may take, queueing included.",
)
@click.option(
    "--restart", default="never", show_default=True, help="never, on-failure or on-failure:N."
)
@click.option(
    "--default-max-tokens",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="For chat requests that set no limit.",
)
@click.option("--device", default=None, help="transformers engine: cpu, cuda, ...")
@weight_layout_option
@click.option(
    "--engine-arg",
    multiple=True,
    help="KEY=VALUE passed to the engine (vLLM: tensor_parallel_size=2, ...).",
)
@click.option(
    "--shutdown-timeout",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds requests in flight get to finish after SIGTERM or Ctrl-C (new ones get 503); "
    "then they end with a 503.",
)
@click.option(
    "--status-interval",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds between status log lines (0: off).",
)
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    envvar="SAGE_LLM_API_KEY",
    help="Require Authorization: Bearer KEY on every /v1 route and /status (repeat to accept "
    "several keys; env SAGE_LLM_API_KEY, whitespace-separated). /health, /metrics, /version, "
    "/tokenize and /detokenize stay open.",
)
@click.option(
    "--enable-engine-admin",
    is_flag=True,
    help="Serve /v1/engines (start and stop engines over HTTP). Needs --api-key.",
)
@click.option(
    "--allow-trust-remote-code",
    is_flag=True,
    help="Let POST /v1/engines set options.trust_remote_code (runs the model repository's "
    "code). Off: such a request is refused with 403.",
)
@click.option(
    "--allowed-origins",
    multiple=True,
    help="CORS: origins browsers may call from, as a JSON list ('[\"http://localhost:3000\"]') "
    "or repeated. Default: none (CORS off; cross-origin browser calls are not allowed).",
)
@click.option(
    "--allowed-methods",
    multiple=True,
    help='CORS: allowed methods (JSON list or repeated; default ["*"]). Used with '
    "--allowed-origins.",
)
@click.option(
    "--allowed-headers",
    multiple=True,
    help='CORS: allowed request headers (JSON list or repeated; default ["*"]). Used with '
    "--allowed-origins.",
)
@click.option("--allow-credentials", is_flag=True, help="CORS: allow credentials (cookies, auth).")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def serve(
    model: str | None,
    served_model_name: str | None,
    strategy: str,
    engine: str,
    policy: str,
    host: str,
    port: int,
    max_queue: int,
    request_timeout: float | None,
    restart: str,
    default_max_tokens: int,
    device: str | None,
    weight_layout: str,
    engine_arg: tuple[str, ...],
    shutdown_timeout: float,
    status_interval: float,
    api_keys: tuple[str, ...],
    enable_engine_admin: bool,
    allow_trust_remote_code: bool,
    allowed_origins: tuple[str, ...],
    allowed_methods: tuple[str, ...],
    allowed_headers: tuple[str, ...],
    allow_credentials: bool,
    log_level: str,
) -> None:
    """Serve a model over an OpenAI-compatible HTTP API with speculative decoding."""
    try:
        from sage.llm.server.run import run_server
    except ImportError as exc:
        raise click.ClickException(
            f"the server needs its dependencies ({exc}); pip install 'sage-llm-core[serve]'."
        ) from exc
    from sage.llm.control_plane import ControlPlaneManager

    settings = _settings(
        api_keys,
        enable_engine_admin,
        allow_trust_remote_code,
        allowed_origins,
        allowed_methods,
        allowed_headers,
        allow_credentials,
    )
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    if host not in ("127.0.0.1", "localhost", "::1") and not settings.api_keys:
        click.echo(
            f"Warning: binding {host} without --api-key: anyone who can reach it can use it.",
            err=True,
        )
    options = _engine_arg(engine_arg)
    if engine == "transformers":
        options.setdefault("weight_layout", weight_layout)
        if device is not None:
            options.setdefault("device", device)
    target = model or _default_model()
    manager = ControlPlaneManager(
        scheduling_policy=policy,
        max_queue=max_queue,
        request_timeout_s=request_timeout,
        restart_policy=restart,
    )
    click.echo(f"Loading {target} on {engine} (strategy {strategy}, policy {policy}) ...", err=True)
    try:
        engine_id = manager.start_engine(
            target, strategy, engine, served_model_name=served_model_name, **options
        )
    except Exception:
        manager.shutdown()
        raise
    click.echo(f"{engine_id} ready; serving on http://{host}:{port}/v1", err=True)
    stop = threading.Event()
    if status_interval > 0:
        threading.Thread(
            target=_log_status, args=(manager, status_interval, stop), daemon=True
        ).start()
    try:
        run_server(
            manager,
            host,
            port,
            log_level,
            shutdown_timeout=shutdown_timeout,
            default_max_tokens=default_max_tokens,
            settings=settings,
        )
    finally:
        stop.set()


def _settings(
    api_keys: tuple[str, ...],
    enable_engine_admin: bool,
    allow_trust_remote_code: bool,
    allowed_origins: tuple[str, ...],
    allowed_methods: tuple[str, ...],
    allowed_headers: tuple[str, ...],
    allow_credentials: bool,
) -> Any:
    """The server's :class:`~sage.llm.server.security.ServerSettings`, checked before any
    model loads: an unsafe combination is a usage error naming the flags."""
    from sage.llm.server.security import ServerSettings, ServerSettingsError, parse_list_option

    try:
        methods = parse_list_option(allowed_methods, "--allowed-methods") or ("*",)
        headers = parse_list_option(allowed_headers, "--allowed-headers") or ("*",)
        return ServerSettings(
            api_keys=tuple(k for k in api_keys if k),
            enable_engine_admin=enable_engine_admin,
            allow_trust_remote_code=allow_trust_remote_code,
            allowed_origins=parse_list_option(allowed_origins, "--allowed-origins"),
            allowed_methods=methods,
            allowed_headers=headers,
            allow_credentials=allow_credentials,
        )
    except ServerSettingsError as exc:
        raise click.UsageError(str(exc)) from exc


def _default_model() -> str:
    """The default pack's name: clients then ask for it by name, not by cache path."""
    from sage.llm.models import default_pack_name

    return default_pack_name()


def status_line(info: dict[str, Any]) -> str:
    """One engine's numbers in one line (also what the status log prints)."""
    m = info["metrics"]
    lat = m["latency"]
    parts = [
        f"{info['engine_id']} {info['state']}",
        f"queue {info['queue_depth']}",
        "ok {ok} err {error} rejected {rejected}".format(**m["requests"]),
        f"{m['tokens_per_second']:.1f} tok/s",
        f"spec on {m['speculative_time_s']:.1f} s",
    ]
    for name, s in m["by_strategy"].items():
        if name != "none":
            acceptance, mean = s["acceptance_rate"], s["mean_accepted_length"]
            parts.append(f"{name}: acceptance {acceptance:.0%}, mean len {mean:.2f}")
    if lat["ttft_s"]["p50"] is not None:
        p50, p99 = lat["ttft_s"]["p50"] * 1000, lat["ttft_s"]["p99"] * 1000
        parts.append(f"ttft p50 {p50:.0f} ms p99 {p99:.0f} ms")
    return ", ".join(parts)


def _log_status(manager: Any, interval: float, stop: threading.Event) -> None:
    log = logging.getLogger("sage.llm.serve")
    seen: dict[str, int] = {}
    while not stop.wait(interval):
        for info in manager.status()["engines"]:
            done = sum(info["metrics"]["requests"].values())
            if done != seen.get(info["engine_id"]):
                seen[info["engine_id"]] = done
                log.info("%s", status_line(info))
