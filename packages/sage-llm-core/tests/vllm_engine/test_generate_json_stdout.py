"""``sage-llm generate --engine vllm --json``: stdout is the JSON document, vLLM's logs are on
stderr (vLLM logs to stdout by default, from this process and from its engine-core process)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from vllm_testutils import needs_vllm

VLLM_LOG_LINE = re.compile(r"^\((?P<process>\w+) pid=\d+\) INFO ", re.MULTILINE)
"""The start of a vLLM log line (``(EngineCore pid=123) INFO 12-06 20:21:16 [...] ...``)."""


@needs_vllm
def test_json_output_is_only_the_document_and_the_logs_go_to_stderr(tiny_model: Path) -> None:
    command = [
        *(sys.executable, "-m", "sage.llm", "generate", "--engine", "vllm", "--json"),
        *("--model", str(tiny_model), "--strategy", "none", "--max-tokens", "8", "hello"),
    ]
    env = {
        **os.environ,
        "VLLM_LOGGING_LEVEL": "INFO",  # vLLM's default: its start-up chatter is what we test
        "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB: a tiny model needs no more
    }
    env.pop("VLLM_LOGGING_STREAM", None)
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=900, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(done.stdout)
    expected = {"text", "token_ids", "prompt_tokens", "finish_reason", "metrics", "engine"}
    assert expected <= document.keys()
    assert document["engine"] == "vllm"
    assert len(document["token_ids"]) == document["metrics"]["num_generated_tokens"] > 0
    processes = {m["process"] for m in VLLM_LOG_LINE.finditer(done.stderr)}
    assert {"MainProcess", "EngineCore"} <= processes  # this process's and the engine's
