"""``sage-llm serve`` as a user runs it: a real process on loopback, the openai client, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest
from click.testing import CliRunner
from serve_helpers import free_port, openai_client, wait_until_healthy

from sage.llm.cli.main import cli

PROMPT = "hello hello hello"


def test_sage_llm_serve_answers_like_sage_llm_generate(tiny_dir: Path) -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "sage.llm",
        "serve",
        "--model",
        str(tiny_dir),
        "--strategy",
        "ngram:n=2",
        "--policy",
        "adaptive",
        "--port",
        str(port),
        "--status-interval",
        "0.5",
        "--shutdown-timeout",
        "5",
    ]
    env = {**os.environ, "SAGE_LLM_API_KEY": "serve-key"}
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(proc, url)
        with pytest.raises(openai.AuthenticationError):
            openai_client(url, "wrong-key").models.list()
        client = openai_client(url, "serve-key")
        got = client.completions.create(
            model=str(tiny_dir), prompt=PROMPT, max_tokens=16, temperature=0
        )
        ran = CliRunner().invoke(
            cli,
            [
                "generate",
                PROMPT,
                "--model",
                str(tiny_dir),
                "--strategy",
                "none",
                "--no-chat",
                "--max-tokens",
                "16",
                "--json",
            ],
        )
        assert got.choices[0].text == json.loads(ran.stdout)["text"]
        time.sleep(1.0)  # one status log line
    finally:
        proc.send_signal(signal.SIGTERM)  # drains, stops the engines, exits 0 (was 143)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "SIGTERM: shutting down" in out
    assert "engines shut down" in out
    assert f"serving on http://127.0.0.1:{port}/v1" in out
    assert "ok 1 err 0 rejected 0" in out  # the status line logged by serve


def test_serve_refuses_a_bad_policy_with_one_line(tiny_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", "--model", str(tiny_dir), "--policy", "sometimes"])
    assert result.exit_code != 0
    assert "unknown scheduling policy 'sometimes'" in str(result.exception or result.output)


def test_serve_help_shows_the_security_flags() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    for flag in (
        "--api-key",
        "SAGE_LLM_API_KEY",
        "--enable-engine-admin",
        "--allow-trust-remote-code",
        "--allowed-origins",
        "--allowed-methods",
        "--allowed-headers",
        "--allow-credentials",
    ):
        assert flag in result.output


def test_serve_refuses_engine_admin_without_a_key(tiny_dir: Path) -> None:
    """Refused before any model loads, naming both flags."""
    args = ["serve", "--model", str(tiny_dir), "--enable-engine-admin"]
    result = CliRunner().invoke(cli, args, env={"SAGE_LLM_API_KEY": None})
    assert result.exit_code == 2
    assert "--enable-engine-admin needs --api-key" in result.output
    assert "Loading" not in result.output


@pytest.mark.parametrize(
    ("args", "env", "warned"),
    [
        (["--host", "0.0.0.0"], {}, True),
        (["--host", "0.0.0.0", "--api-key", "k"], {}, False),
        (["--host", "0.0.0.0", "--enable-engine-admin"], {"SAGE_LLM_API_KEY": "k"}, False),
        ([], {}, False),
    ],
)
def test_serve_warns_only_when_exposed_without_a_key(
    tiny_dir: Path, args: list[str], env: dict[str, str], warned: bool
) -> None:
    """The settings pass (the key may come from the environment); then the bad policy stops
    serve before it binds anything."""
    command = ["serve", "--model", str(tiny_dir), "--policy", "sometimes", *args]
    result = CliRunner().invoke(cli, command, env={"SAGE_LLM_API_KEY": None, **env})
    assert "unknown scheduling policy 'sometimes'" in str(result.exception or result.output)
    assert ("without --api-key" in result.output) is warned


def test_serve_refuses_a_malformed_origin() -> None:
    result = CliRunner().invoke(cli, ["serve", "--allowed-origins", '["http://a.example/"]'])
    assert result.exit_code == 2
    assert "without a path or trailing slash" in result.output
