"""The ``eagle``, ``eagle3`` and ``mtp`` strategies: drafts that read the target's hidden states.

EAGLE-1/2 and EAGLE-3 heads are small trained models (one decoder layer) fed with the target's
hidden states; MTP uses extra layers trained into the target itself (DeepSeek-V3, MiMo,
Qwen3-Next, ...). They accept more tokens per step than model-free strategies on free text and
chat, and vLLM runs them natively. They run on vLLM only: the reference engine's proposers see
tokens, not hidden states.

``validate`` checks what needs no target (the head folder and its kind); the checks against
the target (hidden size, vocabulary, EAGLE-3 layers, MTP layers) run in the core before vLLM
starts (``sage.llm.proposing.check_head_kind`` and the core's checks against the target).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from sage.llm import InvalidParameterError, SpeculativeStrategy, param
from sage.llm.errors import EngineConfigError

if TYPE_CHECKING:
    pass

VLLM_ONLY = (
    "its draft needs the target's hidden states, which the reference (transformers) engine does "
    "not expose to proposers"
)
"""Why the reference engine refuses these strategies, before it loads a model."""


@dataclass(frozen=True, kw_only=True)
class HiddenStateStrategy(SpeculativeStrategy):
    """What EAGLE, EAGLE-3 and MTP share: vLLM's draft-model settings and the refusal on the
    reference engine. Subclasses set ``method`` and declare ``model``."""

    method: ClassVar[str]
    """vLLM's ``speculative_config["method"]``."""
    vllm_only: ClassVar[str | None] = VLLM_ONLY

    model: str | None
    num_speculative_tokens: int
    draft_tensor_parallel_size: int | None = param(
        None, doc="Tensor-parallel size of the draft (vLLM: 1 or the target's size).", ge=1
    )
    quantization: str | None = param(
        None, doc="Quantization of the draft's weights (e.g. fp8); default: unquantized."
    )
    revision: str | None = param(None, doc="Revision (branch, tag or commit) of a hub draft.")
    max_model_len: int | None = param(
        None, doc="Longest sequence the draft handles; longer requests skip speculation.", ge=1
    )
    disable_padded_drafter_batch: bool = param(
        False,
        doc="Let draft batches hold sequences of different lengths (vLLM's option; only some "
        "attention backends support it).",
    )

    def validate(self) -> None:
        if self.model is None:
            return
        if not self.model.strip():
            raise InvalidParameterError(
                self.strategy_name(),
                "model must name the head: a local folder or a hub id.",
                "model",
            )
        from sage.llm.proposing import check_head_kind, describe_head, read_head_config

        where = "parameter 'model'"
        try:
            config = read_head_config(self.model, where)
            if config is not None and self.method != "mtp":
                check_head_kind(self.method, describe_head(config), self.model, where)
        except EngineConfigError as exc:
            raise InvalidParameterError(self.strategy_name(), str(exc), "model") from exc

    def apply(self, engine_config: dict[str, Any]) -> None:
        config: dict[str, Any] = {"method": self.method}
        if self.model is not None:
            config["model"] = self.model
        config["num_speculative_tokens"] = self.num_speculative_tokens
        optional = {
            "draft_tensor_parallel_size": self.draft_tensor_parallel_size,
            "quantization": self.quantization,
            "revision": self.revision,
            "max_model_len": self.max_model_len,
        }
        config.update({k: v for k, v in optional.items() if v is not None})
        if self.disable_padded_drafter_batch:
            config["disable_padded_drafter_batch"] = True
        self.speculative_config(engine_config).update(config)


@dataclass(frozen=True, kw_only=True)
class EagleStrategy(HiddenStateStrategy):
    """EAGLE-1/2: a one-layer head reads the target's last hidden state and proposes k tokens."""

    name: ClassVar[str] = "eagle"
    method: ClassVar[str] = "eagle"

    model: str = param(
        doc="The EAGLE-1/2 head trained for the target: a local folder or a hub id "
        "(e.g. yuhuili/EAGLE-LLaMA3-Instruct-8B).",
    )
    num_speculative_tokens: int = param(
        3, doc="Tokens the head proposes per step (k).", ge=1, le=16
    )


@dataclass(frozen=True, kw_only=True)
class Eagle3Strategy(HiddenStateStrategy):
    """EAGLE-3: the head reads hidden states of several target layers (low, middle, high)."""

    name: ClassVar[str] = "eagle3"
    method: ClassVar[str] = "eagle3"

    model: str = param(
        doc="The EAGLE-3 head trained for the target: a local folder or a hub id (Hugging "
        "Face or speculators format, e.g. yuhuili/EAGLE3-LLaMA3.1-Instruct-8B).",
    )
    num_speculative_tokens: int = param(
        3, doc="Tokens the head proposes per step (k).", ge=1, le=16
    )


@dataclass(frozen=True, kw_only=True)
class MTPStrategy(HiddenStateStrategy):
    """Multi-token prediction: the target's own MTP layers propose the next tokens."""

    name: ClassVar[str] = "mtp"
    method: ClassVar[str] = "mtp"

    model: str | None = param(
        None,
        doc="A separate MTP checkpoint (local folder or hub id); default: the target's own "
        "MTP layers.",
    )
    num_speculative_tokens: int = param(
        1,
        doc="Tokens proposed per step (k). Most checkpoints have one MTP layer; a larger k runs "
        "it again per token and must be a multiple of the layer count.",
        ge=1,
        le=16,
    )
