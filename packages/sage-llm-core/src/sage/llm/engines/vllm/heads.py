"""Checks of EAGLE, EAGLE-3 and MTP configurations against the target, before vLLM starts.

vLLM loads an EAGLE head as a small model that reads the target's hidden states, so a head
trained for another target fails late: a shape error while loading weights, inside the
engine-core process, after the target is already in memory. Everything needed to catch that
first is in two ``config.json`` files, read here as JSON (no transformers, no download):

* EAGLE-1/2 heads (``yuhuili/EAGLE-LLaMA3-Instruct-8B`` layout: a Llama config, usually with
  ``architectures: ["LlamaForCausalLM"]``) share the target's hidden size and vocabulary;
* EAGLE-3 heads, in the Hugging Face layout (``LlamaForCausalLMEagle3`` / ``Eagle3...``) or the
  ``speculators`` layout (``speculators_model_type: "eagle3"``, the layer config under
  ``transformer_layer_config``), may declare ``target_hidden_size``, a smaller
  ``draft_vocab_size`` (mapped to target ids by a ``d2t`` tensor in the weights) and the target
  layers they read (``eagle_aux_hidden_state_layer_ids``);
* MTP has no separate head: the target's own checkpoint carries the MTP layers, which its config
  counts (``num_nextn_predict_layers``, ``mtp_num_hidden_layers``, ...).

Only local directories are read. A hub id is passed to vLLM unchanged and vLLM checks it.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sage.llm.errors import EngineConfigError

HEAD_METHODS = ("eagle", "eagle3", "mtp")
"""The speculative methods whose draft reads the target's hidden states."""

MTP_COUNT_KEYS = ("num_nextn_predict_layers", "mtp_num_hidden_layers", "num_mtp_modules")
"""Config keys that count a checkpoint's MTP layers (vLLM 0.32's ``hf_config_override``)."""

MTP_DEFAULT_ONE = frozenset(
    {"dots3_note", "longcat_flash", "step3p5", "step3p7", "gemma4_assistant", "minimax_m3_vl"}
)
"""Model types to which vLLM gives one MTP layer when the config names no count."""

METHOD_OVERRIDES = ("eagle-", "eagle3", "dflash", "dspark")
"""Substrings of a draft path from which vLLM 0.32 infers another method, even when
``method`` was given as ``mtp`` (its detection in ``SpeculativeConfig.__post_init__``)."""


@dataclass(frozen=True)
class HeadConfig:
    """What a head's config.json says about the target it was trained for."""

    kind: str
    """``"eagle"`` (EAGLE-1/2), ``"eagle3"``, or ``"unknown"`` (no marker either way)."""
    architectures: tuple[str, ...]
    hidden_size: int | None
    vocab_size: int | None
    draft_vocab_size: int | None
    target_hidden_size: int | None
    aux_layer_ids: tuple[int, ...] | None
    speculators: bool
    """True for the ``speculators`` layout (``speculators_model_type`` at the top)."""


def looks_like_path(model: str) -> bool:
    """True when ``model`` names a local directory rather than a hub id (``org/name``)."""
    if model.startswith(("/", "./", "../", "~")) or model in (".", ".."):
        return True
    return Path(model).expanduser().exists()


def read_local_config(model: str, where: str, role: str = "the head") -> dict[str, Any] | None:
    """The parsed config.json of a local model directory; None for a hub id.

    Raises :class:`EngineConfigError` when ``model`` is a local path without a readable
    config.json, since vLLM would then look for it on a hub and fail with a 404.
    """
    if not looks_like_path(model):
        return None
    directory = Path(model).expanduser()
    path = directory / "config.json"
    if not directory.is_dir():
        raise EngineConfigError(
            f"{where}: {role} {model!r} is not a directory; give a model folder (with "
            "config.json) or a hub id."
        )
    if not path.is_file():
        raise EngineConfigError(
            f"{where}: {role} {model!r} has no config.json; an EAGLE head or MTP checkpoint is "
            "a model folder with config.json and safetensors weights."
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EngineConfigError(f"{where}: {path} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise EngineConfigError(f"{where}: {path} must hold a JSON object.")
    return config


def describe_head(config: Mapping[str, Any]) -> HeadConfig:
    """Read a head's config in either layout (Hugging Face or ``speculators``)."""
    speculators = isinstance(config.get("speculators_model_type"), str)
    layer: Mapping[str, Any] = config
    if speculators and isinstance(config.get("transformer_layer_config"), Mapping):
        layer = config["transformer_layer_config"]
    architectures = tuple(str(a) for a in (layer.get("architectures") or ()))
    if speculators:
        spec_type = config["speculators_model_type"]
        kind = "eagle3" if spec_type in ("eagle3", "peagle") else spec_type
    elif any("Eagle3" in a or a.startswith("Peagle") for a in architectures):
        kind = "eagle3"
    elif any(a.startswith("Eagle") for a in architectures):
        kind = "eagle"
    else:
        kind = "unknown"
    eagle_config = config.get("eagle_config")
    aux = config.get("eagle_aux_hidden_state_layer_ids")
    if aux is None and isinstance(eagle_config, Mapping):
        aux = eagle_config.get("eagle_aux_hidden_state_layer_ids")
    return HeadConfig(
        kind=kind,
        architectures=architectures,
        hidden_size=_int(layer.get("hidden_size")),
        vocab_size=_int(layer.get("vocab_size")),
        draft_vocab_size=_int(config.get("draft_vocab_size")),
        target_hidden_size=_int(config.get("target_hidden_size")),
        aux_layer_ids=tuple(aux) if isinstance(aux, (list, tuple)) else None,
        speculators=speculators,
    )


def check_head_kind(method: str, head: HeadConfig, model: str, where: str) -> None:
    """Refuse a head whose config marks it for the other EAGLE generation."""
    if method == "eagle" and head.kind == "eagle3":
        raise EngineConfigError(
            f"{where}: {model!r} is an EAGLE-3 head ({_arch(head)}); use the eagle3 strategy "
            "for it, or an EAGLE-1/2 head for eagle."
        )
    if method == "eagle3" and head.kind not in ("eagle3", "unknown"):
        raise EngineConfigError(
            f"{where}: {model!r} is not an EAGLE-3 head ({_arch(head)}); use the eagle "
            "strategy for an EAGLE-1/2 head, or an EAGLE-3 head (architectures "
            "LlamaForCausalLMEagle3 / Eagle3LlamaForCausalLM, or the speculators format) "
            "for eagle3."
        )


def check_head_against_target(
    method: str,
    head: HeadConfig,
    head_dir: str,
    target: Mapping[str, Any],
    where: str,
) -> None:
    """Hidden size, vocabulary and (EAGLE-3) target layers of a head against its target."""
    text = _text_config(target)
    target_hidden = _int(text.get("hidden_size"))
    target_vocab = _int(text.get("vocab_size"))
    target_layers = _int(text.get("num_hidden_layers"))
    model = head_dir
    expected_hidden = head.target_hidden_size or head.hidden_size
    if (
        target_hidden is not None
        and expected_hidden is not None
        and expected_hidden != target_hidden
    ):
        field = "target_hidden_size" if head.target_hidden_size else "hidden_size"
        raise EngineConfigError(
            f"{where}: the head {model!r} was built for hidden size {expected_hidden} ({field} in "
            f"its config.json) but the target's hidden size is {target_hidden}; the head reads "
            "the target's hidden states, so it must be trained for this target. Pick the head "
            "published for the target model."
        )
    if target_vocab is None:
        return
    if head.vocab_size is not None and head.vocab_size != target_vocab:
        raise EngineConfigError(
            f"{where}: the head {model!r} has a vocabulary of {head.vocab_size} tokens "
            f"(vocab_size) but the target has {target_vocab}; the head must use the target's "
            "tokenizer. Pick the head published for the target model."
        )
    if method == "eagle3" and head.draft_vocab_size is not None:
        if head.draft_vocab_size > target_vocab:
            raise EngineConfigError(
                f"{where}: the head {model!r} has draft_vocab_size {head.draft_vocab_size}, "
                f"larger than the target's vocabulary ({target_vocab}); the head does not "
                "belong to this target."
            )
        if head.draft_vocab_size < target_vocab and _weights_lack(head_dir, "d2t"):
            raise EngineConfigError(
                f"{where}: the head {model!r} drafts from a reduced vocabulary "
                f"(draft_vocab_size {head.draft_vocab_size} < {target_vocab}) but its weights "
                "have no 'd2t' tensor mapping draft ids to target ids; vLLM would propose "
                "wrong tokens. Re-export the head with its d2t mapping."
            )
    if method == "eagle3" and head.aux_layer_ids is not None and target_layers is not None:
        ids = list(head.aux_layer_ids)
        bad = [i for i in ids if not isinstance(i, int) or not 0 <= i <= target_layers]
        if bad or len(set(ids)) != len(ids):
            raise EngineConfigError(
                f"{where}: the head {model!r} reads target layers {ids} "
                f"(eagle_aux_hidden_state_layer_ids) but the target has {target_layers} layers: "
                f"each id must be distinct and between 0 and {target_layers}. The head was "
                "trained for a deeper target; pick the head published for this one."
            )


def mtp_layer_count(config: Mapping[str, Any]) -> int | None:
    """How many MTP layers a checkpoint's config declares; None when it names no count."""
    sections = [config, _text_config(config)]
    mtp = config.get("mtp_config")
    if isinstance(mtp, Mapping):
        sections.append(mtp)
    counts = [
        value
        for section in sections
        for key in MTP_COUNT_KEYS
        if (value := _int(section.get(key))) is not None
    ]
    return max(counts) if counts else None


def check_mtp(draft_dir: str, config: Mapping[str, Any], where: str) -> None:
    """The checkpoint vLLM drafts from with ``method="mtp"`` must carry MTP layers."""
    model_type = config.get("model_type") or _text_config(config).get("model_type") or "?"
    count = mtp_layer_count(config)
    if count is None and model_type in MTP_DEFAULT_ONE:
        return
    if count is None or count < 1:
        found = "declares 0 MTP layers" if count == 0 else "declares no MTP layers"
        raise EngineConfigError(
            f"{where}: {draft_dir!r} (model_type {model_type!r}) {found} "
            f"({' / '.join(MTP_COUNT_KEYS)} in config.json); MTP drafts with layers trained "
            "into the model (DeepSeek-V3, MiMo, Qwen3-Next, Qwen3.5, GLM-4.5, ERNIE 4.5, "
            "...). Use such a target, or a head-based strategy (eagle, eagle3) or a "
            "model-free one (ngram, suffix) for this model."
        )


def check_method_not_overridden(method: str, draft_path: str, where: str) -> None:
    """vLLM 0.32 replaces ``mtp`` by another method when the draft's path contains one of
    :data:`METHOD_OVERRIDES`; refuse rather than silently run something else."""
    lowered = draft_path.lower()
    hit = next((s for s in METHOD_OVERRIDES if s in lowered), None)
    if method == "mtp" and hit is not None:
        raise EngineConfigError(
            f"{where}: the MTP checkpoint path {draft_path!r} contains {hit!r}, from which "
            "vLLM 0.32 infers another speculative method and ignores method='mtp'. Move or "
            "link the model to a path without it."
        )


def _weights_lack(model_dir: str, tensor: str) -> bool:
    """True when the local safetensors files exist and none holds ``tensor`` (by name suffix).

    Only the JSON header of each file is read (8-byte length, then JSON).
    """
    files = sorted(Path(model_dir).expanduser().glob("*.safetensors"))
    if not files:
        return False  # weights elsewhere (e.g. .bin): nothing to say
    for path in files:
        try:
            with path.open("rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                header = json.loads(handle.read(length))
        except (OSError, ValueError, struct.error):
            return False
        if any(name == tensor or name.endswith("." + tensor) for name in header):
            return False
    return True


def _text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    text = config.get("text_config")
    return text if isinstance(text, Mapping) else config


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _arch(head: HeadConfig) -> str:
    if head.speculators:
        return "speculators format"
    return "architectures " + (", ".join(head.architectures) or "none")
