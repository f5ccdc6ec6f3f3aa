"""The project's checks of vLLM engine arguments, run before vLLM sees them.

vLLM validates too, but late and loudly: a missing draft model is retried as a hub id before it
fails, a wrong vocabulary surfaces as a pydantic error, and a bad per-batch-size table only
fails inside the engine-core process at start-up. :func:`precheck_engine_args` catches the same
mistakes first, in the main process, with messages that name the key and the fix.

vLLM's own validation, run without starting an engine, is
:func:`sage.llm.testing.vllm_reference.validate_with_vllm` (for tests).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from sage.llm.engines.vllm import heads
from sage.llm.engines.vllm.models import resolve_model
from sage.llm.engines.vllm.proposer import CUSTOM_CLASS, check_custom_class_model
from sage.llm.errors import EngineConfigError

SCHEDULE_KEY = "num_speculative_tokens_per_batch_size"


def precheck_engine_args(
    engine_args: dict[str, Any],
    *,
    auto_download: bool = False,
    strategy: str = "speculative_config",
) -> None:
    """Check (and normalize in place) ``engine_args["speculative_config"]``.

    A draft model name is replaced by the local directory it resolves to, so vLLM never
    searches a hub for it.
    """
    section = engine_args.get("speculative_config")
    if not section:
        return
    if not isinstance(section, dict):
        raise EngineConfigError(f"{strategy}: speculative_config must be a dict.")
    _check_keys(section, strategy)
    method = section.get("method")
    _check_method(method, strategy)
    k = _positive_int(section, "num_speculative_tokens", strategy, required=True)
    if method in ("ngram", "ngram_gpu"):
        _check_lookup(section, strategy)
    if SCHEDULE_KEY in section and section[SCHEDULE_KEY] is not None:
        check_schedule(section[SCHEDULE_KEY], k, strategy)
    if method == "draft_model":
        _check_draft(engine_args, section, strategy, auto_download)
    if method in heads.HEAD_METHODS:
        _check_head(engine_args, section, strategy)
    if method == CUSTOM_CLASS:
        check_custom_class_model(section, strategy)


def check_schedule(table: Any, num_speculative_tokens: int, strategy: str) -> None:
    """vLLM's rules for the per-batch-size table, plus: no k above num_speculative_tokens.

    Rows are ``[first_batch_size, last_batch_size, k]`` with an inclusive last size; the first
    row starts at 1, rows are sorted and do not overlap, ``0 <= k``. vLLM carries the last row's
    k to larger batches and silently caps k at num_speculative_tokens; we reject a larger k
    because it means the strategy disagrees with itself.
    """
    where = f"{strategy}: speculative_config[{SCHEDULE_KEY!r}]"
    if not isinstance(table, (list, tuple)) or not table:
        raise EngineConfigError(f"{where} must be a non-empty list of [first, last, k] rows.")
    previous_last = 0
    for row in table:
        if (
            not isinstance(row, (list, tuple))
            or len(row) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in row)
        ):
            raise EngineConfigError(
                f"{where}: row {row!r} must be three integers [first, last, k]."
            )
        first, last, k = row
        if first < 1 or first > last:
            raise EngineConfigError(
                f"{where}: row {list(row)} needs 1 <= first <= last (batch sizes, inclusive)."
            )
        if first <= previous_last:
            raise EngineConfigError(
                f"{where}: row {list(row)} overlaps or precedes the previous row; sort the "
                "rows by batch size without overlaps."
            )
        if previous_last == 0 and first != 1:
            raise EngineConfigError(
                f"{where}: the first row must start at batch size 1, got {list(row)}."
            )
        if not 0 <= k <= num_speculative_tokens:
            raise EngineConfigError(
                f"{where}: row {list(row)} has k={k}; it must be between 0 and "
                f"num_speculative_tokens ({num_speculative_tokens})."
            )
        previous_last = last


def _check_keys(section: Mapping[str, Any], strategy: str) -> None:
    known = _vllm_speculative_fields()
    if known is None:
        return
    unknown = sorted(set(section) - known)
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise EngineConfigError(
            f"{strategy}: speculative_config has key(s) the installed vLLM does not know: "
            + ", ".join(hints)
            + "."
        )


def _check_method(method: Any, strategy: str) -> None:
    if not isinstance(method, str) or not method:
        raise EngineConfigError(
            f"{strategy}: speculative_config needs a 'method', e.g. 'ngram' or 'draft_model'."
        )
    methods = vllm_methods()
    if methods is not None and method not in methods:
        close = difflib.get_close_matches(method, sorted(methods), n=2)
        raise EngineConfigError(
            f"{strategy}: speculative method {method!r} is not supported by the installed vLLM"
            + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else "")
            + ". Supported: "
            + ", ".join(sorted(m for m in methods if not m.endswith("_mtp")))
            + "."
        )


def _positive_int(
    section: Mapping[str, Any], key: str, strategy: str, *, required: bool = False
) -> int:
    value = section.get(key)
    if value is None and not required:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EngineConfigError(
            f"{strategy}: speculative_config[{key!r}] must be an integer >= 1, got {value!r}."
        )
    return value


def _check_lookup(section: Mapping[str, Any], strategy: str) -> None:
    low = _positive_int(section, "prompt_lookup_min", strategy) or None
    high = _positive_int(section, "prompt_lookup_max", strategy) or None
    if low is not None and high is not None and low > high:
        raise EngineConfigError(
            f"{strategy}: prompt_lookup_min ({low}) must be <= prompt_lookup_max ({high})."
        )


def _check_draft(
    engine_args: dict[str, Any], section: dict[str, Any], strategy: str, auto_download: bool
) -> None:
    model = section.get("model")
    if not isinstance(model, str) or not model:
        raise EngineConfigError(
            f"{strategy}: method 'draft_model' needs speculative_config['model'] (the draft)."
        )
    draft_dir = resolve_model(
        model, auto_download=auto_download, revision=section.get("revision"), role="draft model"
    )
    section["model"] = draft_dir
    target = engine_args.get("model")
    if not section.get("use_heterogeneous_vocab") and isinstance(target, str):
        target_vocab = vocab_size_of(target)
        draft_vocab = vocab_size_of(draft_dir)
        if target_vocab is not None and draft_vocab is not None and target_vocab != draft_vocab:
            raise EngineConfigError(
                f"{strategy}: the draft model {model!r} has a vocabulary of {draft_vocab} "
                f"tokens but the target has {target_vocab}; draft and target must share a "
                "tokenizer. Pick a draft from the target's model family."
            )
    _check_draft_limits(engine_args, section, strategy)


def _check_head(engine_args: dict[str, Any], section: dict[str, Any], strategy: str) -> None:
    """EAGLE/EAGLE-3 heads and MTP checkpoints against the target (see :mod:`.heads`)."""
    method = section["method"]
    head = section.get("model")
    target = engine_args.get("model")
    if method != "mtp" and (not isinstance(head, str) or not head):
        raise EngineConfigError(
            f"{strategy}: method {method!r} needs speculative_config['model'], the head "
            "(a local folder or a hub id)."
        )
    if method == "mtp":
        draft = head if isinstance(head, str) and head else target
        if isinstance(draft, str):
            heads.check_method_not_overridden(method, draft, strategy)
            draft_config = heads.read_local_config(draft, strategy, "the MTP checkpoint")
            if draft_config is not None:
                heads.check_mtp(draft, draft_config, strategy)
    else:
        assert isinstance(head, str)
        head_config = heads.read_local_config(head, strategy)
        target_config = (
            heads.read_local_config(target, strategy, "the target")
            if isinstance(target, str)
            else None
        )
        if head_config is not None:
            described = heads.describe_head(head_config)
            heads.check_head_kind(method, described, head, strategy)
            if target_config is not None:
                heads.check_head_against_target(method, described, head, target_config, strategy)
    _check_draft_limits(engine_args, section, strategy)


def _check_draft_limits(
    engine_args: Mapping[str, Any], section: Mapping[str, Any], strategy: str
) -> None:
    draft_tp = section.get("draft_tensor_parallel_size")
    target_tp = engine_args.get("tensor_parallel_size", 1)
    if draft_tp is not None and draft_tp not in (1, target_tp):
        raise EngineConfigError(
            f"{strategy}: draft_tensor_parallel_size={draft_tp} must be 1 or the target's "
            f"tensor_parallel_size ({target_tp})."
        )
    draft_len = section.get("max_model_len")
    target_len = engine_args.get("max_model_len")
    if draft_len is not None and target_len is not None and draft_len > target_len:
        raise EngineConfigError(
            f"{strategy}: the draft's max_model_len ({draft_len}) cannot exceed the target's "
            f"({target_len})."
        )


def vocab_size_of(model_dir: str) -> int | None:
    """``vocab_size`` from a local model directory's config.json (text config first)."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    text = config.get("text_config")
    if isinstance(text, dict) and isinstance(text.get("vocab_size"), int):
        return int(text["vocab_size"])
    value = config.get("vocab_size")
    return value if isinstance(value, int) else None


def _vllm_speculative_config() -> Any:
    try:
        from vllm.config import speculative
    except ImportError:
        return None
    return speculative


def vllm_methods() -> set[str] | None:
    """The speculative methods the installed vLLM accepts; None without vLLM."""
    module = _vllm_speculative_config()
    if module is None:
        return None
    found: set[str] = set()

    def walk(tp: Any) -> None:
        for arg in get_args(tp):
            if isinstance(arg, str):
                found.add(arg)
            else:
                walk(arg)

    walk(module.SpeculativeMethod)
    if "mtp" not in found and any(m.endswith("_mtp") for m in found):
        found.add("mtp")
    return found


def _vllm_speculative_fields() -> set[str] | None:
    module = _vllm_speculative_config()
    if module is None:
        return None
    import dataclasses

    return {f.name for f in dataclasses.fields(module.SpeculativeConfig)}
