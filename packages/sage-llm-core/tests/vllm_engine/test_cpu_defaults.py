"""cpu_defaults: vLLM's CPU backend gets a KV-cache size and eager mode unless the user chose."""

from __future__ import annotations

import pytest

from sage.llm.engines.vllm.cpu import (
    GIB,
    MAX_KV_CACHE_BYTES,
    MIN_KV_CACHE_BYTES,
    available_memory_bytes,
    cpu_defaults,
    default_kv_cache_bytes,
)


def test_kv_cache_is_a_quarter_of_available_memory_within_bounds() -> None:
    assert default_kv_cache_bytes(8 * GIB) == 2 * GIB
    assert default_kv_cache_bytes(1 * GIB) == MIN_KV_CACHE_BYTES
    assert default_kv_cache_bytes(512 * GIB) == MAX_KV_CACHE_BYTES
    assert default_kv_cache_bytes(10 * GIB + 12345) % (1 << 20) == 0


def test_defaults_on_a_plain_config() -> None:
    assert cpu_defaults({"model": "m"}, environ={}, available_bytes=12 * GIB) == {
        "enforce_eager": True,
        "kv_cache_memory_bytes": 3 * GIB,
    }


@pytest.mark.parametrize(
    ("user", "environ"),
    [
        ({"kv_cache_memory_bytes": 1 << 28}, {}),
        ({"gpu_memory_utilization": 0.5}, {}),
        ({}, {"VLLM_CPU_KVCACHE_SPACE": "2"}),
    ],
)
def test_a_users_memory_choice_wins(user: dict[str, object], environ: dict[str, str]) -> None:
    defaults = cpu_defaults(user, environ=environ, available_bytes=12 * GIB)
    assert "kv_cache_memory_bytes" not in defaults
    assert {**defaults, **user} == {"enforce_eager": True, **user}


@pytest.mark.parametrize("user", [{"enforce_eager": False}, {"compilation_config": {"mode": 3}}])
def test_a_users_compilation_choice_wins(user: dict[str, object]) -> None:
    assert "enforce_eager" not in cpu_defaults(user, environ={}, available_bytes=12 * GIB)


def test_available_memory_is_measured() -> None:
    assert available_memory_bytes() > 0
