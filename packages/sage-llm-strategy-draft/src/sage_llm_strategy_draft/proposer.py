"""A draft model with its own KV cache: the draft strategy's per-step proposer.

The draft cache follows the committed context lazily: at each step the proposer finds how much
of what it has cached (the context it saw last time plus its own proposals) is still the
committed context, crops the rest away, feeds only the new committed tokens, and then drafts
token by token. Nothing is recomputed from the start of the prompt.

With sampling, each draft token is drawn from the draft's distribution ``q`` (the same
temperature/top-k/top-p as the target), and ``q`` is returned so that the engine's verifier can
apply ``min(1, p/q)``. For that rule to keep the target's distribution, draft tokens must be
random draws independent of the verifier's, so the proposer has its own generator; the engine
seeds it through :meth:`DraftModelProposer.reseed` when a run is seeded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from sage.llm.engines.transformers.compat import cache_argument
from sage.llm.engines.transformers.errors import ModelLoadError, VocabularyMismatchError
from sage.llm.engines.transformers.sampling import SamplingParams, probabilities
from sage.llm.proposer import Proposal, ProposerContext

DRAFT_WEIGHT_LAYOUT: Final = "row"
"""See :mod:`sage.llm.engines.transformers.layout`: that layout pays off for multi-token passes."""


def output_vocab_size(model: Any) -> int:
    """Rows of the model's output projection: the length of its logits."""
    return int(model.get_output_embeddings().weight.shape[0])


def check_same_vocabulary(
    target_name: str,
    target_vocab_size: int,
    target_tokenizer: Any,
    draft_name: str,
    draft_model: Any,
    draft_tokenizer: Any,
) -> None:
    """Refuse a draft whose token ids do not mean what the target's mean."""
    draft_size = output_vocab_size(draft_model)
    if draft_size != target_vocab_size:
        raise VocabularyMismatchError(
            f"draft model {draft_name!r} has a vocabulary of {draft_size} tokens but the target "
            f"{target_name!r} has {target_vocab_size}; a draft must share the target's "
            "tokenizer. Pick a smaller model of the same family (for example Qwen2.5-0.5B for "
            "a Qwen2.5 target), or use the ngram strategy."
        )
    if (
        target_tokenizer is not None
        and draft_tokenizer is not None
        and target_tokenizer.get_vocab() != draft_tokenizer.get_vocab()
    ):
        raise VocabularyMismatchError(
            f"draft model {draft_name!r} and target {target_name!r} have the same vocabulary "
            "size but different tokenizers (token ids map to different text). Pick a draft "
            "of the same model family, or use the ngram strategy."
        )


class DraftModelProposer:
    """Propose ``num_speculative_tokens`` tokens per step by running a small draft model."""

    def __init__(
        self,
        model: Any,
        num_speculative_tokens: int,
        sampling: SamplingParams | None = None,
        eos_token_ids: Sequence[int] = (),
    ) -> None:
        import torch

        if num_speculative_tokens < 1:
            raise ValueError(f"num_speculative_tokens must be >= 1, got {num_speculative_tokens}")
        self.model = model
        self.num_speculative_tokens = num_speculative_tokens
        self.sampling = sampling or SamplingParams()
        self.eos_token_ids = frozenset(eos_token_ids)
        self.device = next(model.parameters()).device
        self._cache_kw = cache_argument(model)
        self.generator = torch.Generator(device=self.device)
        self.generator.seed()
        self._cache: Any = None
        self._cached: list[int] = []  # the tokens whose keys/values are in the draft cache
        self._seen = 0  # len(context) at the previous step: that prefix is still committed

    def reseed(self, seed: int) -> None:
        """Make draft sampling reproducible for a seeded run."""
        self.generator.manual_seed(seed)

    def start(self, prompt_ids: Sequence[int]) -> None:
        from transformers import DynamicCache

        self._cache = DynamicCache(config=self.model.config)
        self._cached = []
        self._seen = 0

    def _sync(self, context: Sequence[int]) -> int:
        """Crop the cache to what is still committed; return how many cached tokens remain."""
        keep = self._seen
        limit = min(len(self._cached), len(context) - 1)  # always feed at least one token
        while keep < limit and self._cached[keep] == context[keep]:
            keep += 1
        keep = min(keep, limit)
        drop = len(self._cached) - keep
        if drop:
            self._cache.crop(-drop)
            del self._cached[keep:]
        return keep

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        import torch

        k = min(self.num_speculative_tokens, max_tokens)
        if k <= 0:
            return Proposal([])
        if self._cache is None:
            self.start(context_ids)
        keep = self._sync(context_ids)
        feed = list(context_ids[keep:])
        self._seen = len(context_ids)
        greedy = self.sampling.greedy
        tokens: list[int] = []
        rows: list[torch.Tensor] = []
        with torch.inference_mode():
            for i in range(k):
                logits = self.model(
                    input_ids=torch.tensor([feed], device=self.device),
                    **{self._cache_kw: self._cache},
                    use_cache=True,
                    logits_to_keep=1,
                ).logits[0, -1]
                self._cached.extend(feed)
                if greedy:
                    token = int(logits.argmax().item())
                else:
                    q = probabilities(logits, self.sampling)
                    token = int(torch.multinomial(q, 1, generator=self.generator).item())
                    rows.append(q)
                tokens.append(token)
                if token in self.eos_token_ids or i == k - 1:
                    break  # nothing useful follows an end of sequence
                feed = [token]
        return Proposal(tokens, None if greedy else torch.stack(rows))

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        """The next :meth:`propose` crops whatever was rejected; nothing to do here."""


def build_draft_proposer(
    draft_model_id: str,
    num_speculative_tokens: int,
    context: ProposerContext,
    *,
    allow_hub: bool = True,
) -> DraftModelProposer:
    """Load the draft next to the target (same device and dtype) and check its vocabulary."""
    from sage.llm.engines.transformers.loading import load_model

    target = context.target
    if target is None:
        raise ValueError(
            "the draft strategy needs the target model in its ProposerContext to check the "
            "draft's vocabulary; build the proposer through an engine."
        )
    looks_like_hub_id = draft_model_id.count("/") == 1 and not draft_model_id.startswith(
        (".", "/", "~")
    )
    if not allow_hub and looks_like_hub_id and not Path(draft_model_id).expanduser().exists():
        raise ModelLoadError(
            f"draft model {draft_model_id!r} is a hub id and auto_download is off; pass a "
            "local directory, a .gguf file or a model pack name."
        )
    # Row-major weights (PyTorch's default) for the draft: it runs 1- and 2-token passes, where
    # the column-major layout that speeds up the target's verify pass is no faster or slower.
    model, tokenizer = load_model(
        draft_model_id,
        device=context.device,
        dtype=context.dtype,
        require_tokenizer=False,
        weight_layout=DRAFT_WEIGHT_LAYOUT,
    )
    target_name = getattr(target.config, "_name_or_path", "") or "target"
    check_same_vocabulary(
        target_name,
        context.vocab_size or output_vocab_size(target),
        context.tokenizer,
        draft_model_id,
        model,
        tokenizer,
    )
    eos = set()
    for source in (getattr(target, "generation_config", None), target.config):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            eos.add(value)
        elif isinstance(value, (list, tuple)):
            eos.update(int(v) for v in value)
    sampling = SamplingParams(context.temperature, context.top_k, context.top_p)
    return DraftModelProposer(model, num_speculative_tokens, sampling, sorted(eos))
