"""Keeping plugin and engine chatter off standard output.

``sage-llm strategies list --json``, ``sage-llm vllm-args --json`` and ``sage-llm generate
--json`` are read by programs, so their standard output must hold the JSON and nothing else.
Third-party code runs while they work (a plugin's module body on import, its ``apply``, a whole
engine); whatever it prints goes to standard error instead, where a person still sees it.

Two strengths: :func:`stdout_to_stderr` moves Python's ``sys.stdout`` (enough for plugin code);
:func:`stdout_fd_to_stderr` moves file descriptor 1 itself, which an engine needs: vLLM logs to
stdout by default (its handler is bound to ``sys.stdout`` when vLLM is imported), its C++ code
writes to fd 1, and its engine-core process inherits fd 1 from us.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TextIO

VLLM_LOGGING_STREAM = "VLLM_LOGGING_STREAM"
"""vLLM's own setting for where its log handler writes (read when vLLM is imported)."""


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[TextIO]:
    """Send ``print`` output to stderr inside the block; yields the real stdout for results."""
    real = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        yield real


@contextlib.contextmanager
def stdout_fd_to_stderr() -> Iterator[None]:
    """Point file descriptor 1 at stderr inside the block; stdout is the real one again after.

    Everything written to stdout inside the block lands on stderr: ``print``, logging handlers
    bound to ``sys.stdout``, C code writing to fd 1, and child processes started inside the
    block (they inherit fd 1, and keep it after the block ends). Print the result after the
    block. vLLM imported inside the block is also told to log to stderr
    (``VLLM_LOGGING_STREAM``, unless set), so its messages after the block (at shutdown) stay
    off stdout too. Where fd 1 or fd 2 is not open, only ``sys.stdout`` is redirected.
    """
    original = sys.stdout
    _flush(original)  # what was printed before goes where it was meant to
    saved = _point_fd1_at_stderr()
    unset = VLLM_LOGGING_STREAM not in os.environ
    if unset:
        os.environ[VLLM_LOGGING_STREAM] = "ext://sys.stderr"
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if unset:
            os.environ.pop(VLLM_LOGGING_STREAM, None)
        # Buffered writes made inside the block belong to stderr: flush them before fd 1 is
        # the real stdout again.
        _flush(original)
        _flush(sys.__stdout__)
        _flush_c_stdio()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


def _point_fd1_at_stderr() -> int | None:
    """A duplicate of the real fd 1 (to restore it), or None when there is nothing to move."""
    try:
        saved = os.dup(1)
    except OSError:
        return None
    try:
        os.dup2(2, 1)
    except OSError:
        os.close(saved)
        return None
    return saved


def _flush(stream: TextIO | None) -> None:
    with contextlib.suppress(Exception):  # closed, or not a real stream
        if stream is not None:
            stream.flush()


def _flush_c_stdio() -> None:
    """Flush C's ``stdout`` buffer (C code's ``printf`` into fd 1, still pointed at stderr)."""
    with contextlib.suppress(Exception):  # no C library to load: nothing buffered there
        import ctypes

        ctypes.CDLL(None).fflush(None)
