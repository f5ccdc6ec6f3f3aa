"""Load a causal LM and its tokenizer from a local directory, a GGUF file, a model pack or the hub.

CPU threading is set up here too: torch's OpenMP threads spin-wait by default, which on a small
machine made each small matmul about 10x slower when two threads were used; a passive wait
policy fixes that, but only when it is in the environment before torch starts. Importing
:mod:`sage.llm.engines.transformers` sets it (without overriding a user's choice), and
:func:`configure_threads` picks a thread count from the CPUs this process may actually use.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sage.llm.engines.transformers.compat import legacy_config
from sage.llm.engines.transformers.errors import DeviceUnavailableError, ModelLoadError
from sage.llm.engines.transformers.layout import (
    WeightLayout,
    use_column_major_weights,
    wants_column_major,
)


def set_cpu_environment() -> None:
    """Put thread settings in the environment before torch is imported (no-op if set)."""
    if "OMP_WAIT_POLICY" not in os.environ and "torch" in sys.modules:
        warnings.warn(
            "torch was imported before sage.llm.engines.transformers, so OpenMP threads "
            "spin-wait (often several times slower on a busy or small CPU). Set "
            "OMP_WAIT_POLICY=PASSIVE in the environment, or import this module first.",
            RuntimeWarning,
            stacklevel=3,
        )
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def configure_threads() -> None:
    """Use one intra-op thread per CPU available to this process, unless the user chose.

    ``torch.get_num_threads()`` counts the host's cores, which over-subscribes a container or a
    ``taskset`` that allows fewer. An explicit ``OMP_NUM_THREADS`` always wins.
    """
    import torch

    if "OMP_NUM_THREADS" in os.environ or "MKL_NUM_THREADS" in os.environ:
        return
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        available = os.cpu_count() or 1
    if torch.get_num_threads() > available:
        torch.set_num_threads(max(1, available))


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(device: str | None) -> str:
    """``device`` checked against this machine (``None``: CUDA when present, else the CPU).

    Caught here rather than at ``model.to(device)``, where torch raises an internal assertion
    from deep inside its CUDA initialisation.
    """
    import torch

    if device is None:
        return default_device()
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise DeviceUnavailableError(
            f"unknown device {device!r}: use cpu, cuda or cuda:N."
        ) from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise DeviceUnavailableError(
                f"device {device!r} is not available: this torch ({torch.__version__}) is "
                f"{build} or sees no GPU. Use device cpu, or install a CUDA build of torch."
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s) "
                "are visible."
            )
    return device


def default_dtype(device: str) -> Any:
    """float32 on CPU (bf16 matmuls are slow on most CPUs); bf16/fp16 on CUDA."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: ``path`` for from_pretrained plus an optional GGUF file name."""

    path: str
    gguf_file: str | None = None


def resolve_source(
    name_or_path: str | os.PathLike[str], gguf_file: str | None = None
) -> ModelSource:
    """Turn what the user typed into something ``from_pretrained`` accepts, or explain why not.

    Order: an existing path (a directory, or a ``.gguf`` file); then whatever
    :func:`sage.llm.models.resolve_model`, the project's one resolver, makes of the name (a model
    pack or a hub id, always a local directory in the end).
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelLoadError(
                f"{text!r} is a file but not a .gguf file; pass a model directory (with "
                f"config.json) or a .gguf file."
            )
        return ModelSource(str(path.parent), path.name)
    if path.is_dir():
        if gguf_file is None and not (path / "config.json").exists():
            ggufs = sorted(p.name for p in path.glob("*.gguf"))
            if len(ggufs) == 1:
                gguf_file = ggufs[0]
            else:
                found = (
                    f"GGUF files {ggufs}; pick one with gguf_file=" if ggufs else "no config.json"
                )
                raise ModelLoadError(
                    f"{text!r} is a directory but not a transformers model ({found}). "
                    f"Pass a directory saved with save_pretrained or a .gguf file."
                )
        return ModelSource(str(path), gguf_file)
    looks_local = text.startswith((".", "/", "~")) or text.lower().endswith(".gguf")
    if looks_local or not text:
        raise ModelLoadError(
            f"model {text!r} not found: no such directory or .gguf file. Check the path, or "
            "name a model pack (`sage-llm models list`) or a hub id 'org/name'."
        )
    from sage.llm.models import resolve_model

    # Model packs, their cache and the hub belong to sage.llm.models; its errors (unknown name
    # with suggestions, unreachable hub, checksum mismatch) are already clear.
    return resolve_source(resolve_model(text), gguf_file)


def load_model(
    name_or_path: str | os.PathLike[str],
    *,
    gguf_file: str | None = None,
    device: str | None = None,
    dtype: Any = None,
    trust_remote_code: bool = False,
    require_tokenizer: bool = True,
    weight_layout: WeightLayout = "auto",
) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` ready for inference on ``device``.

    With ``require_tokenizer=False`` (a draft model) a missing tokenizer gives ``None``.
    ``weight_layout="auto"`` stores fp32 CPU weights column-major, which makes multi-token
    verify passes much cheaper (see :mod:`~sage.llm.engines.transformers.layout`); ``"row"``
    keeps PyTorch's default.
    """
    set_cpu_environment()  # effective only if torch has not started yet
    import torch

    source = resolve_source(name_or_path, gguf_file)
    device = resolve_device(device)
    if device == "cpu":
        configure_threads()
    dtype = dtype if dtype is not None else default_dtype(device)
    if isinstance(dtype, str) and dtype != "auto":
        dtype = getattr(torch, dtype)
    kwargs: dict[str, Any] = {
        "trust_remote_code": trust_remote_code,
        "require_tokenizer": require_tokenizer,
    }
    if source.gguf_file:
        _require_gguf()
        kwargs["gguf_file"] = source.gguf_file
    try:
        tokenizer, model = _from_pretrained(source.path, dtype, local_files_only=True, **kwargs)
    except (OSError, ValueError) as exc:
        where = f" (gguf_file={source.gguf_file!r})" if source.gguf_file else ""
        raise ModelLoadError(
            f"could not load the model in {source.path!r}{where}: {_first_line(exc)}"
        ) from exc
    model.to(device)
    model.eval()
    if wants_column_major(model, weight_layout):
        use_column_major_weights(model)
    return model, tokenizer


def _from_pretrained(
    path: str, dtype: Any, *, require_tokenizer: bool = True, **kwargs: Any
) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = None
    if require_tokenizer or _may_hold_tokenizer(path, kwargs.get("gguf_file")):
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        except (OSError, ValueError, TypeError):
            if require_tokenizer:
                raise
    config = legacy_config(path, **kwargs)
    if config is not None:
        kwargs["config"] = config
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs)
    return tokenizer, model


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


def _may_hold_tokenizer(path: str, gguf_file: str | None) -> bool:
    """False for a local model directory without tokenizer files (a GGUF file holds one).

    Asking transformers anyway is not a harmless miss: 4.x then tries to convert a
    SentencePiece/tiktoken tokenizer that is not there and fails with an ImportError
    (protobuf, tiktoken) instead of saying the tokenizer is missing.
    """
    directory = Path(path)
    if gguf_file or not directory.is_dir():
        return True
    return any((directory / name).exists() for name in TOKENIZER_FILES)


def _require_gguf() -> None:
    try:
        import gguf  # noqa: F401
    except ImportError as exc:
        raise ModelLoadError(
            "loading a .gguf file needs the 'gguf' package: "
            "pip install 'sage-llm-core[transformers]'"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
