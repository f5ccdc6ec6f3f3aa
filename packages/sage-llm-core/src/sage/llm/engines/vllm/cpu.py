"""Engine arguments that let vLLM's CPU backend start on an ordinary machine.

vLLM's CPU worker reserves ``gpu_memory_utilization`` (0.92 by default; on the CPU the name
means host memory) of the node's *total* memory and refuses to start when less than that is
*available*, which is the case on nearly every machine that runs anything else ("Available
memory on node 0 ... is less than desired CPU memory utilization"). vLLM skips that check when
the KV cache has an explicit size (``kv_cache_memory_bytes``, or the ``VLLM_CPU_KVCACHE_SPACE``
environment variable in GiB), so that is what :func:`cpu_defaults` supplies: a quarter of the
memory available now, between :data:`MIN_KV_CACHE_BYTES` and :data:`MAX_KV_CACHE_BYTES`.

A quarter leaves room for the weights, vLLM's own footprint and the rest of the machine; the
cap keeps a big host from pinning many GiB for one CLI run (4 GiB holds over 300k tokens of
Qwen2.5-0.5B's bf16 KV cache, 140k of the 1.5B's). The user's own choice always wins: any of
``kv_cache_memory_bytes`` or ``gpu_memory_utilization`` in the engine arguments, or
``VLLM_CPU_KVCACHE_SPACE`` in the environment, and no size is added.

Second, ``enforce_eager=True``: vLLM compiles the model with torch.compile by default, which
took minutes on a 2-core machine before the first token (measured in docs/vllm.md), and with
an explicit KV-cache size an eager engine also skips the warm-up pass. ``enforce_eager`` or
``compilation_config`` in the user's arguments keeps their choice. Nothing here imports vLLM.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

GIB = 1 << 30
MIN_KV_CACHE_BYTES = GIB // 2
"""Below this a default-length context of common models no longer fits; vLLM then says so."""
MAX_KV_CACHE_BYTES = 4 * GIB
KV_CACHE_SHARE = 0.25
"""Share of the memory available at start-up given to the KV cache."""

USER_MEMORY_ARGS = ("kv_cache_memory_bytes", "gpu_memory_utilization")
"""Engine arguments by which a user sizes vLLM's memory; any of them turns the default off."""
USER_COMPILE_ARGS = ("enforce_eager", "compilation_config")
"""Engine arguments by which a user chooses vLLM's compilation; any of them keeps theirs."""
KVCACHE_ENV = "VLLM_CPU_KVCACHE_SPACE"


def available_memory_bytes() -> int:
    """Memory the OS can give a new process now (``MemAvailable``), not the total."""
    try:
        import psutil  # a dependency of vLLM, so present wherever vLLM runs
    except ImportError:
        return _meminfo_available()
    return int(psutil.virtual_memory().available)


def _meminfo_available() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as lines:
            for line in lines:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def default_kv_cache_bytes(available_bytes: int) -> int:
    """:data:`KV_CACHE_SHARE` of ``available_bytes``, clamped, rounded down to whole MiB."""
    share = int(available_bytes * KV_CACHE_SHARE)
    size = min(MAX_KV_CACHE_BYTES, max(MIN_KV_CACHE_BYTES, share))
    return size - size % (1 << 20)


def cpu_defaults(
    engine_args: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    available_bytes: int | None = None,
) -> dict[str, Any]:
    """The engine arguments to add for vLLM's CPU backend (``{}`` when the user chose both).

    ``engine_args`` are the user's (checked, not modified); ``environ`` defaults to
    ``os.environ``; ``available_bytes`` to :func:`available_memory_bytes` (measured now).
    Merge the result *under* the user's arguments: ``{**cpu_defaults(args), **args}``.
    """
    args = engine_args or {}
    env = os.environ if environ is None else environ
    defaults: dict[str, Any] = {}
    if not any(args.get(key) is not None for key in USER_COMPILE_ARGS):
        defaults["enforce_eager"] = True
    if not (any(args.get(key) is not None for key in USER_MEMORY_ARGS) or env.get(KVCACHE_ENV)):
        available = available_memory_bytes() if available_bytes is None else available_bytes
        defaults["kv_cache_memory_bytes"] = default_kv_cache_bytes(available)
    return defaults


def with_cpu_defaults(engine_args: dict[str, Any]) -> dict[str, Any]:
    """``engine_args`` with :func:`cpu_defaults` merged under them when the installed vLLM is
    the CPU build; unchanged on other platforms and without vLLM (nothing can start then).
    The one place both ``VLLMService.setup()`` and the control plane's vLLM engines use."""
    try:
        on_cpu = is_cpu_platform()
    except ImportError:
        return engine_args
    return {**cpu_defaults(engine_args), **engine_args} if on_cpu else engine_args


def is_cpu_platform() -> bool:
    """True when the installed vLLM runs on the CPU (imports vLLM's platform detection)."""
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())
