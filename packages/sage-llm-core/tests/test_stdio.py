"""Keeping standard output for results (:mod:`sage.llm._stdio`).

Each check runs in a fresh interpreter whose stdout and stderr are pipes, as when a script reads
``sage-llm ... --json``: pytest's own capturing would hide what reaches file descriptor 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import logging, os, subprocess, sys
    from sage.llm._stdio import stdout_fd_to_stderr

    print("before")
    handler = logging.StreamHandler(sys.stdout)  # bound to stdout, as vLLM's is
    log = logging.getLogger("engine")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    with stdout_fd_to_stderr():
        print("python print")
        log.info("engine log line")
        os.write(1, b"fd 1 write\\n")
        subprocess.run([sys.executable, "-c", "print('child print')"], check=True)
        print("inside: " + os.environ.get("VLLM_LOGGING_STREAM", "unset"))
    print("result: " + os.environ.get("VLLM_LOGGING_STREAM", "unset"))
    """
)


def _run(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "VLLM_LOGGING_STREAM"}
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**environ, **env},
        check=True,
        timeout=120,
    )


def test_everything_written_to_stdout_inside_the_block_lands_on_stderr() -> None:
    done = _run(SCRIPT)
    assert done.stdout.splitlines() == ["before", "result: unset"]
    for line in (
        "python print",
        "engine log line",
        "fd 1 write",
        "child print",
        "inside: ext://sys.stderr",
    ):
        assert line in done.stderr.splitlines()


def test_a_logging_stream_the_user_chose_is_kept() -> None:
    done = _run(SCRIPT, VLLM_LOGGING_STREAM="ext://sys.stdout")
    assert "inside: ext://sys.stdout" in done.stderr
    assert done.stdout.splitlines() == ["before", "result: ext://sys.stdout"]


def test_without_a_file_descriptor_1_only_sys_stdout_moves() -> None:
    script = (
        "import io, os, sys\n"
        "os.close(1)\n"
        "sys.stdout = io.StringIO()\n"
        "from sage.llm._stdio import stdout_fd_to_stderr\n"
        "with stdout_fd_to_stderr():\n"
        "    print('inside')\n"
    )
    assert _run(script).stderr == "inside\n"
