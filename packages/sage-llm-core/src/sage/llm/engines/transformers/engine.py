"""The reference engine: plain and speculative generation on a transformers causal LM.

One loop serves both. Each step the proposer (if any) suggests up to ``k`` tokens; the target
model scores the pending token plus those ``k`` tokens in a single forward pass over its KV
cache; :func:`~sage.llm.engines.transformers.verify.verify` keeps an accepted prefix plus one
token of the target's own; the cache is cropped back past the rejected tokens. An empty
proposal makes the step ordinary one-token decoding, so plain generation is the same code with
no proposer. The prefix is processed once (the prefill) and never again.

Cache invariant: the target cache holds every committed token except the last one (the
*pending* token, whose logits have not been computed yet).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

from sage.llm.engines.transformers import compat
from sage.llm.engines.transformers.errors import InvalidSamplingParamsError
from sage.llm.engines.transformers.sampling import SamplingParams, probabilities, sample
from sage.llm.engines.transformers.verify import verify
from sage.llm.engines.transformers.vocab import eos_token_ids, output_vocab_size
from sage.llm.metrics import SpecDecodeMetrics
from sage.llm.proposer import (
    ConfidenceAwareProposer,
    FinishingProposer,
    Proposal,
    Proposer,
    ProposerContext,
    SeededProposer,
)
from sage.llm.registry import get_strategy, resolve_optional_strategy
from sage.llm.results import GenerationResult

if TYPE_CHECKING:
    import torch

    from sage.llm.engines.transformers.layout import WeightLayout
    from sage.llm.strategy import SpeculativeStrategy

TextCallback = Callable[[str], None]

_EMPTY = Proposal([])


class TransformersEngine:
    """Generate with a transformers causal LM, optionally speculating with a proposer.

    Build it from a loaded model (``TransformersEngine(model, tokenizer)``) or by name
    (:meth:`from_pretrained`). ``run_metrics`` accumulates every request's metrics.
    """

    def __init__(self, model: Any, tokenizer: Any = None, *, name: str | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name or getattr(getattr(model, "config", None), "_name_or_path", "") or "model"
        self.run_metrics = SpecDecodeMetrics()
        self._proposers: dict[tuple[Hashable, SamplingParams], Proposer | None] = {}

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        gguf_file: str | None = None,
        device: str | None = None,
        dtype: Any = None,
        trust_remote_code: bool = False,
        weight_layout: WeightLayout = "auto",
    ) -> TransformersEngine:
        """Load a local directory, a ``.gguf`` file, a model pack or a hub id.

        ``weight_layout`` is explained in :mod:`sage.llm.engines.transformers.layout`.
        """
        from sage.llm.engines.transformers.loading import load_model

        model, tokenizer = load_model(
            name_or_path,
            gguf_file=gguf_file,
            device=device,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            weight_layout=weight_layout,
        )
        return cls(model, tokenizer, name=str(name_or_path))

    # -- properties ------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        device: torch.device = next(self.model.parameters()).device
        return device

    @property
    def dtype(self) -> torch.dtype:
        dtype: torch.dtype = self.model.dtype
        return dtype

    @property
    def vocab_size(self) -> int:
        return output_vocab_size(self.model)

    @property
    def eos_token_ids(self) -> frozenset[int]:
        return eos_token_ids(self.model, self.tokenizer)

    # -- proposers -------------------------------------------------------------------------

    def proposer_context(self, sampling: SamplingParams) -> ProposerContext:
        return ProposerContext(
            target=self.model,
            tokenizer=self.tokenizer,
            vocab_size=self.vocab_size,
            device=str(self.device),
            dtype=self.model.dtype,
            temperature=sampling.temperature,
            top_k=sampling.top_k,
            top_p=sampling.top_p,
        )

    def make_proposer(
        self, strategy: SpeculativeStrategy | str | None, sampling: SamplingParams
    ) -> Proposer | None:
        """The strategy's proposer for this engine (``None`` for plain decoding).

        Strategies given by name (``"ngram:n=3"``) are resolved through the plugin registry.
        A strategy that only configures vLLM (no ``make_proposer``) is refused with a clear
        error rather than silently decoding without speculation.
        """
        strategy = resolve_optional_strategy(strategy)
        if strategy is None:
            return None
        require_proposer(strategy)
        proposer = strategy.make_proposer(self.proposer_context(sampling))
        if proposer is None:
            raise NotImplementedError(_no_proposer(strategy, "its make_proposer returns None"))
        if not isinstance(proposer, Proposer):
            raise TypeError(
                f"{type(strategy).__name__}.make_proposer returned {type(proposer).__name__}, "
                "which lacks start/propose/on_verified (see sage.llm.proposer.Proposer)."
            )
        return proposer

    def snapshot_learning_proposers(self) -> dict[tuple[Hashable, SamplingParams], Proposer]:
        """Copies of the proposers that learn from finished requests (the ``finish`` hook of
        :class:`~sage.llm.proposer.FinishingProposer`, e.g. suffix decoding's cache), so that a
        benchmark can run one request again from the same state (:meth:`restore_proposers`)
        instead of letting the first run's output answer the second.

        Raises ``TypeError`` (from :func:`copy.deepcopy`) for a proposer that cannot be copied.
        """
        return {
            key: copy.deepcopy(proposer)
            for key, proposer in self._proposers.items()
            if isinstance(proposer, FinishingProposer)
        }

    def restore_proposers(self, snapshot: dict[tuple[Hashable, SamplingParams], Proposer]) -> None:
        """Put back the state :meth:`snapshot_learning_proposers` copied (the snapshot stays
        usable: each restore takes a copy of it)."""
        for key, proposer in snapshot.items():
            self._proposers[key] = copy.deepcopy(proposer)

    def _cached_proposer(
        self, strategy: SpeculativeStrategy | str, sampling: SamplingParams
    ) -> Proposer | None:
        """One proposer per (strategy value, sampling) pair, reused across requests.

        Strategies are frozen values, so the strategy itself is the key: equal parameters share
        a proposer (and its loaded draft model). A strategy class that is not hashable (a plain
        class with ``__eq__`` but no ``__hash__``) is keyed by its class and full spec string.
        """
        if isinstance(strategy, str):
            strategy = get_strategy(strategy)
        key: Hashable
        try:
            hash(strategy)
            key = strategy
        except TypeError:
            key = (type(strategy), strategy.to_string(with_defaults=True))
        if (key, sampling) not in self._proposers:
            self._proposers[(key, sampling)] = self.make_proposer(strategy, sampling)
        return self._proposers[(key, sampling)]

    # -- prompts ---------------------------------------------------------------------------

    def encode_prompt(self, prompt: str | Sequence[int], *, chat: bool | None = None) -> list[int]:
        """Token ids for ``prompt``; ``chat=None`` applies the chat template when there is one.

        The same function prepares vLLM's prompts (:func:`sage.llm.prompts.prompt_token_ids`).
        """
        from sage.llm.prompts import prompt_token_ids

        return prompt_token_ids(self.tokenizer, prompt, chat=chat, model_name=self.name)

    def decode(self, token_ids: Sequence[int]) -> str:
        if self.tokenizer is None:
            return ""
        return str(self.tokenizer.decode(list(token_ids), skip_special_tokens=True))

    # -- generation ------------------------------------------------------------------------

    def generate(
        self,
        prompt: str | Sequence[int],
        *,
        strategy: SpeculativeStrategy | str | None = None,
        proposer: Proposer | None = None,
        max_tokens: int = 128,
        temperature: float = 0.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: Sequence[str] | str | None = None,
        chat: bool | None = None,
        on_text: TextCallback | None = None,
    ) -> GenerationResult:
        """Generate up to ``max_tokens`` tokens after ``prompt`` (text or token ids).

        ``strategy`` (an instance or a ``"name:k=v"`` string) or an explicit ``proposer``
        turns on speculative decoding; neither means plain decoding. ``temperature=0`` is
        greedy. ``on_text`` receives the text as it is produced (never a partial stop string
        or a partial UTF-8 character).
        """
        sampling = SamplingParams(temperature, top_k, top_p)
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise InvalidSamplingParamsError(
                f"max_tokens must be an integer >= 1, got {max_tokens!r}."
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise InvalidSamplingParamsError(f"seed must be an integer >= 0, got {seed!r}.")
        stops = [stop] if isinstance(stop, str) else [s for s in (stop or ()) if s]
        strategy = resolve_optional_strategy(strategy)
        if proposer is None and strategy is not None:
            proposer = self._cached_proposer(strategy, sampling)
        prompt_ids = self.encode_prompt(prompt, chat=chat)
        self._check_length(len(prompt_ids), max_tokens)
        result = self._generate_ids(
            prompt_ids, proposer, sampling, max_tokens, seed, stops, on_text
        )
        self.run_metrics.merge(result.metrics)
        return result

    def _check_length(self, prompt_len: int, max_tokens: int) -> None:
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if isinstance(limit, int) and prompt_len + max_tokens > limit:
            raise InvalidSamplingParamsError(
                f"prompt ({prompt_len} tokens) + max_tokens ({max_tokens}) exceeds the model's "
                f"context of {limit} tokens; shorten the prompt or lower max_tokens."
            )

    def _generate_ids(
        self,
        prompt_ids: list[int],
        proposer: Proposer | None,
        sampling: SamplingParams,
        max_tokens: int,
        seed: int | None,
        stops: list[str],
        on_text: TextCallback | None,
    ) -> GenerationResult:
        import torch

        model = self.model
        device = self.device
        eos = self.eos_token_ids
        generator = None
        if not sampling.greedy:
            generator = torch.Generator(device=device)
            generator.manual_seed(seed if seed is not None else int(torch.seed() % 2**63))
        metrics = SpecDecodeMetrics()
        text_out = _TextTracker(self, stops, on_text) if (stops or on_text) else None
        context = list(prompt_ids)  # every committed token; the last one is pending
        generated: list[int] = []
        finish = "length"
        clock = time.perf_counter
        start = clock()

        with torch.inference_mode():
            cache = compat.new_cache(model)
            if proposer is not None:
                compat.check_rollback(model, cache, len(prompt_ids) + max_tokens)
                proposer.start(prompt_ids)
                if seed is not None and isinstance(proposer, SeededProposer):
                    proposer.reseed(seed + 1)  # its own generator, independent of the verifier's
            logits = compat.forward(model, prompt_ids, cache, logits_to_keep=1)
            tokens = _choose(logits, sampling, generator)
            metrics.prefill_time_s = clock() - start
            # Only a proposer that asks for it costs the softmax (see ConfidenceAwareProposer).
            listener = proposer if isinstance(proposer, ConfidenceAwareProposer) else None
            if listener is not None:
                listener.on_target_confidence(_token_probabilities(logits[-1:], tokens))
            if proposer is not None:
                compat.enable_rollback(cache)  # sliding-window layers keep what a crop needs
            while True:
                # Commit this step's tokens, stopping at EOS, the token budget or a stop string.
                for token in tokens:
                    context.append(token)
                    generated.append(token)
                    if token in eos:
                        finish = "eos"
                        break
                    if len(generated) >= max_tokens:
                        break
                if text_out is not None and text_out.update(generated):
                    finish = "stop"
                if finish != "length" or len(generated) >= max_tokens:
                    break

                room = max_tokens - len(generated) - 1  # the target always adds one token
                t0 = clock()
                proposal = proposer.propose(context, room) if proposer and room > 0 else _EMPTY
                draft = proposal.token_ids
                if len(draft) > room:
                    draft = draft[:room]
                t1 = clock()
                logits = compat.forward(
                    model, [context[-1], *draft], cache, logits_to_keep=len(draft) + 1
                )
                draft_probs = proposal.draft_probs
                if draft_probs is not None and len(draft) < len(proposal.token_ids):
                    draft_probs = draft_probs[: len(draft)]
                verdict = verify(logits, draft, draft_probs, sampling, generator)
                if proposer is not None:
                    # Only the rejected tokens leave the cache (never crop(0): see compat).
                    compat.drop_last_tokens(cache, len(draft) - verdict.num_accepted)
                    proposer.on_verified(len(draft), verdict.num_accepted)
                    if listener is not None:
                        rows = logits[: verdict.num_accepted + 1]
                        listener.on_target_confidence(_token_probabilities(rows, verdict.tokens))
                t2 = clock()
                metrics.draft_time_s += t1 - t0
                metrics.verify_time_s += t2 - t1
                if not draft:
                    metrics.plain_verify_time_s += t2 - t1
                metrics.record_step(len(draft), verdict.num_accepted)
                tokens = verdict.tokens

            if isinstance(proposer, FinishingProposer):  # e.g. to learn across requests
                proposer.finish(generated)
        metrics.num_generated_tokens = len(generated)
        metrics.wall_time_s = clock() - start
        text = text_out.finish(generated) if text_out is not None else self.decode(generated)
        return GenerationResult(text, generated, list(prompt_ids), finish, metrics)


def _token_probabilities(logits: torch.Tensor, tokens: Sequence[int]) -> list[float]:
    """Softmax probability of ``tokens[i]`` under row ``i`` of ``logits``."""
    import torch

    index = torch.tensor(list(tokens), device=logits.device, dtype=torch.long).unsqueeze(1)
    logp = torch.log_softmax(logits.float(), dim=-1).gather(1, index)
    return [float(v) for v in logp.exp().squeeze(1).tolist()]


def _choose(logits: torch.Tensor, sampling: SamplingParams, generator: Any) -> list[int]:
    """The first generated token from the prefill's last-position logits."""
    if sampling.greedy:
        return [int(logits[-1].argmax().item())]
    return [int(sample(probabilities(logits[-1], sampling), generator).item())]


class _TextTracker:
    """Incremental detokenization for streaming and stop strings, linear in the output length.

    Tokenizers merge pieces across tokens (a leading space, a multi-byte UTF-8 character split
    over two tokens), so a token cannot be decoded alone. As vLLM and TGI do, each step decodes
    only a short window: the tokens from ``prefix`` (already turned into text) to the end,
    minus the same window without the new tokens; the difference is the new text. While the
    window ends in a partial UTF-8 character (U+FFFD) nothing is committed and the window
    grows. Text that could be the start of a stop string is held back from ``on_text``.
    """

    def __init__(self, engine: TransformersEngine, stops: list[str], on_text: TextCallback | None):
        self.engine = engine
        self.stops = stops
        self.on_text = on_text
        self.holdback = max((len(s) for s in stops), default=1) - 1
        self.emitted = 0
        self.text = ""
        self.stopped_at: int | None = None
        self.prefix = 0  # first token of the decode window
        self.read = 0  # tokens before this one are in self.text

    def _advance(self, generated: list[int], *, final: bool = False) -> None:
        """Append the text of ``generated[self.read:]`` once it is complete UTF-8."""
        if self.read >= len(generated):
            return
        before = self.engine.decode(generated[self.prefix : self.read])
        window = self.engine.decode(generated[self.prefix :])
        if len(window) > len(before) and (final or not window.endswith("\ufffd")):
            self.text += window[len(before) :]
            self.prefix = self.read
            self.read = len(generated)
        elif final:
            self.read = len(generated)

    def update(self, generated: list[int]) -> bool:
        """Decode the new tokens, emit what is safe, and return True when a stop string appeared."""
        self._advance(generated)
        if self.stops:
            search_from = max(0, self.emitted - self.holdback)
            hits = [i for i in (self.text.find(s, search_from) for s in self.stops) if i >= 0]
            if hits:
                self.stopped_at = min(hits)
                self.text = self.text[: self.stopped_at]
                self._emit(len(self.text))
                return True
        self._emit(len(self.text) - self.holdback)
        return False

    def finish(self, generated: list[int]) -> str:
        if self.stopped_at is None:
            self._advance(generated, final=True)
        self._emit(len(self.text))
        return self.text

    def _emit(self, upto: int) -> None:
        if upto > self.emitted:
            if self.on_text is not None:
                self.on_text(self.text[self.emitted : upto])
            self.emitted = upto


def require_proposer(strategy: SpeculativeStrategy) -> None:
    """Refuse a strategy that implements no ``make_proposer`` (it only writes vLLM's engine
    arguments): checked before a model is loaded (``sage-llm generate``, ``serve``), not after."""
    from sage.llm.plugins import implements

    reason = getattr(strategy, "vllm_only", None)
    if reason:
        raise NotImplementedError(
            f"{strategy.strategy_name()} runs on vLLM only: {reason}. Use --engine vllm "
            "(pip install 'sage-llm-core[vllm]'), or a strategy with a proposer for the "
            "reference engine (sage-llm strategies list shows them)."
        )
    if not implements(strategy, "make_proposer"):
        raise NotImplementedError(_no_proposer(strategy, "it implements no make_proposer"))


def _no_proposer(strategy: SpeculativeStrategy, why: str) -> str:
    return (
        f"strategy {strategy.strategy_name()!r} has no proposer for the reference engine "
        f"(transformers): {why}, so it only configures vLLM. Run it on vLLM (--engine vllm), "
        "or give the strategy a make_proposer(context) hook that returns a Proposer "
        "(docs/plugin-authoring.md)."
    )
