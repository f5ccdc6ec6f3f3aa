"""A conformance suite that strategy packages subclass to prove they follow the contract.

In a strategy package's tests::

    from sage.llm.testing import StrategyConformanceTests

    class TestNgramConformance(StrategyConformanceTests):
        strategy_name = "ngram"
        valid_params = {"n": 3, "num_speculative_tokens": 2}
        invalid_params = [{"n": 0}, {"num_speculative_tokens": "many"}]

pytest collects the inherited tests. They check what every engine and tool relies on: the
entry point resolves by name and loads cleanly, parameters are declared and validated, ``apply``
merges a well-formed ``speculative_config`` without touching anything else, and the string and
dict forms round-trip. The optional hooks and declarations (``wrap_proposer``,
``with_num_speculative_tokens``, ``transformers_peer``, a ``draft_model=True`` parameter) are
checked where the strategy has them, and skipped with a reason where it does not. Requires
pytest (``pip install 'sage-llm-core[testing]'``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from sage.llm import discovery
from sage.llm.engines.vllm.config import check_speculative_config
from sage.llm.errors import InvalidParameterError
from sage.llm.params import accepts_any_keyword
from sage.llm.plugins import implements
from sage.llm.registry import STATUS_OK, get_strategy, get_strategy_class, list_strategies
from sage.llm.strategy import SpeculativeStrategy
from sage.llm.testing.proposers import ProposerConformanceTests

__all__ = ["ProposerConformanceTests", "StrategyConformanceTests"]

_FOREIGN_CONFIG: dict[str, Any] = {
    "model": "target-model",
    "tensor_parallel_size": 2,
    "max_model_len": 4096,
    "speculative_config": {"enforce_eager": True},
}
"""Keys a strategy must leave alone: other engine arguments and foreign speculative keys."""


class StrategyConformanceTests:
    """Subclass, set ``strategy_name`` (and parameters), and pytest runs the contract checks."""

    strategy_name: ClassVar[str]
    """The entry-point name under which the package registers its strategy."""
    valid_params: ClassVar[Mapping[str, Any]] = {}
    """Parameters that must construct an instance (required ones included)."""
    invalid_params: ClassVar[list[Mapping[str, Any]]] = []
    """Parameter sets (added to ``valid_params``) that must raise InvalidParameterError."""

    # -- fixtures --------------------------------------------------------------------------

    @pytest.fixture
    def strategy_class(self) -> type[SpeculativeStrategy]:
        return get_strategy_class(self.strategy_name)

    @pytest.fixture
    def strategy(self) -> SpeculativeStrategy:
        return get_strategy(self.strategy_name, **self.valid_params)

    # -- discovery and validation ----------------------------------------------------------

    def test_registered_under_its_name(self) -> None:
        names = [e.name for e in discovery.entries()]
        assert self.strategy_name in names, f"no entry point {self.strategy_name!r} in {names}"

    def test_loads_cleanly(self) -> None:
        info = {i.name: i for i in list_strategies()}[self.strategy_name]
        assert info.status == STATUS_OK, info.error
        assert "apply" in info.hooks
        assert info.distribution, "the entry point should come from an installed distribution"

    def test_declared_name_matches_entry_point(
        self, strategy_class: type[SpeculativeStrategy]
    ) -> None:
        assert strategy_class.strategy_name() == self.strategy_name

    def test_aliases_resolve_to_the_same_class(
        self, strategy_class: type[SpeculativeStrategy]
    ) -> None:
        entry = next(e for e in discovery.entries() if e.name == self.strategy_name)
        for alias in entry.aliases:
            assert get_strategy_class(alias) is strategy_class

    def test_every_parameter_is_documented(self, strategy_class: type[SpeculativeStrategy]) -> None:
        for spec in strategy_class.parameters():
            assert spec.doc.strip(), f"parameter {spec.name!r} has no doc"

    # -- parameters ----------------------------------------------------------------------

    def test_invalid_parameters_are_rejected(
        self, strategy_class: type[SpeculativeStrategy]
    ) -> None:
        if not self.invalid_params:
            if accepts_any_keyword(strategy_class):
                pytest.skip("the strategy takes **kwargs and declares no checks: nothing to reject")
            pytest.skip(
                "invalid_params is empty, so nothing was checked: list parameter sets that must "
                "raise InvalidParameterError (e.g. [{'k': 0}])"
            )
        for bad in self.invalid_params:
            with pytest.raises(InvalidParameterError):
                get_strategy(self.strategy_name, **{**self.valid_params, **bad})

    def test_unknown_parameter_is_rejected(self, strategy_class: type[SpeculativeStrategy]) -> None:
        if accepts_any_keyword(strategy_class):
            pytest.skip("the strategy takes **kwargs, so every parameter name is accepted")
        with pytest.raises(InvalidParameterError, match="no_such_parameter"):
            get_strategy(self.strategy_name, **self.valid_params, no_such_parameter=1)

    def test_dict_round_trip(self, strategy: SpeculativeStrategy) -> None:
        again = type(strategy).from_dict(strategy.to_dict())
        assert again.to_dict() == strategy.to_dict()

    def test_string_round_trip(self, strategy: SpeculativeStrategy) -> None:
        text = strategy.to_string()
        assert text.split(":", 1)[0] == self.strategy_name
        assert get_strategy(text).to_dict() == strategy.to_dict()

    def test_instances_are_immutable_values(self, strategy: SpeculativeStrategy) -> None:
        if not dataclasses.is_dataclass(type(strategy)):
            pytest.skip(
                f"{type(strategy).__name__} is not a dataclass, so immutability was not checked; "
                "declare it @dataclass(frozen=True, kw_only=True) to have it checked"
            )
        if not strategy.parameters():
            pytest.skip("the strategy declares no parameters: nothing could be reassigned")
        first = strategy.parameters()[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(strategy, first, getattr(strategy, first))

    # -- apply -------------------------------------------------------------------------------

    def test_apply_writes_a_valid_speculative_config(self, strategy: SpeculativeStrategy) -> None:
        config: dict[str, Any] = {}
        strategy.apply(config)
        section = config.get("speculative_config")
        assert isinstance(section, dict), "apply must write a speculative_config dict"
        assert section, "apply must fill speculative_config"
        assert isinstance(section.get("method"), str), "apply must set 'method' explicitly"
        check_speculative_config(config, self.strategy_name)
        json.dumps(config)  # CLIs print it as --speculative-config JSON

    def test_apply_merges_and_leaves_other_keys_alone(self, strategy: SpeculativeStrategy) -> None:
        config = copy.deepcopy(_FOREIGN_CONFIG)
        strategy.apply(config)
        for key, value in _FOREIGN_CONFIG.items():
            if key != "speculative_config":
                assert config[key] == value, f"apply changed engine argument {key!r}"
        assert config["speculative_config"]["enforce_eager"] is True
        assert "tensor_parallel_size" not in config["speculative_config"]
        legacy = {"num_speculative_tokens", "speculative_model", "ngram_prompt_lookup_max"}
        assert not legacy & set(config), "write speculative keys inside speculative_config"

    def test_apply_is_idempotent(self, strategy: SpeculativeStrategy) -> None:
        once: dict[str, Any] = {}
        strategy.apply(once)
        twice = copy.deepcopy(once)
        strategy.apply(twice)
        assert once == twice

    # -- per-step face -------------------------------------------------------------------------

    def test_make_proposer_is_optional(self, strategy: SpeculativeStrategy) -> None:
        from sage.llm.proposer import Proposer, ProposerContext

        try:
            proposer = strategy.make_proposer(ProposerContext())
        except Exception as exc:  # a proposer may need a real model in the context
            pytest.skip(
                f"make_proposer raised {type(exc).__name__} with an empty ProposerContext, so "
                "it was not checked here; check it with sage.llm.testing.ProposerConformanceTests"
            )
        assert proposer is None or isinstance(proposer, Proposer)

    # -- optional hooks and declarations: checked where the strategy has them -----------------

    def test_draft_model_parameter_is_one_string(
        self, strategy_class: type[SpeculativeStrategy]
    ) -> None:
        declared = [s for s in strategy_class.parameters() if s.draft_model]
        if not declared:
            pytest.skip("no parameter is declared draft_model=True (optional): nothing to check")
        assert len(declared) == 1, (
            f"one parameter may name the draft model, got {[s.name for s in declared]}"
        )
        assert _accepts(declared[0], "some-draft-model"), (
            f"the draft-model parameter {declared[0].name!r} must take a str (a model name)"
        )

    def test_wrap_proposer_only_cuts_the_inner_proposal(
        self, strategy: SpeculativeStrategy
    ) -> None:
        from sage.llm.proposer import Proposal, Proposer

        if not implements(strategy, "wrap_proposer"):
            pytest.skip("the strategy implements no wrap_proposer (optional): nothing to check")
        inner = _ScriptedDraft()
        wrapped = strategy.wrap_proposer(inner)
        if wrapped is None:
            pytest.skip("wrap_proposer returned None for a plain model-drafting proposer")
        assert isinstance(wrapped, Proposer), "wrap_proposer must return a Proposer"
        context = list(range(8))
        wrapped.start(context)
        for _ in range(6):
            proposal = wrapped.propose(context, 3)
            assert isinstance(proposal, Proposal)
            tokens = list(proposal.token_ids)
            assert len(tokens) <= 3, "a proposal must respect max_tokens"
            assert tokens == _ScriptedDraft.continuation(context)[: len(tokens)], (
                "the wrapper may shorten the inner proposer's draft, never change it"
            )
            wrapped.on_verified(len(tokens), len(tokens))
            context += [*tokens, _ScriptedDraft.continuation(context)[len(tokens)]]

    def test_with_num_speculative_tokens_sets_k(self, strategy: SpeculativeStrategy) -> None:
        if not implements(strategy, "with_num_speculative_tokens"):
            pytest.skip(
                "the strategy implements no with_num_speculative_tokens (optional): not checked"
            )
        before = strategy.to_dict()
        for k in (1, 2):
            changed = strategy.with_num_speculative_tokens(k)
            if changed is None:
                pytest.skip("with_num_speculative_tokens returned None: k is not a setting")
            assert type(changed) is type(strategy), "return a copy of the same strategy"
            config: dict[str, Any] = {}
            changed.apply(config)
            assert config["speculative_config"].get("num_speculative_tokens") == k, (
                f"with_num_speculative_tokens({k}) must propose {k} tokens per step"
            )
        assert strategy.to_dict() == before, "the strategy itself must not change"

    def test_transformers_peer_is_generate_arguments(self, strategy: SpeculativeStrategy) -> None:
        if not implements(strategy, "transformers_peer"):
            pytest.skip("the strategy implements no transformers_peer (optional): nothing to check")
        peer = strategy.transformers_peer()
        if peer is None:
            pytest.skip("transformers_peer returned None: no equivalent in transformers")
        assert isinstance(peer, dict), "transformers_peer must return a dict (or None)"
        assert peer, "transformers_peer must not return an empty dict (None: no equivalent)"
        assert all(isinstance(key, str) and key.isidentifier() for key in peer), (
            "keys are keyword arguments of transformers' generate"
        )
        json.dumps(peer)  # recorded in the bench's JSON
        draft = peer.get("assistant_model")
        assert draft is None or isinstance(draft, str), "assistant_model is a model name"


class _ScriptedDraft:
    """A model-drafting proposer with settable early stops whose draft is a fixed function of
    the context, so a wrapper's proposals can be checked against it."""

    def __init__(self) -> None:
        self.confidence_threshold = 0.0
        self.cumulative_confidence_threshold = 0.0

    @staticmethod
    def continuation(context: list[int]) -> list[int]:
        return [(len(context) * 7 + i) % 50 for i in range(64)]

    def start(self, prompt_ids: Any) -> None:
        pass

    def propose(self, context_ids: Any, max_tokens: int) -> Any:
        from sage.llm.proposer import Proposal

        return Proposal(self.continuation(list(context_ids))[:max_tokens])

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        pass


def _accepts(spec: Any, value: str) -> bool:
    from sage.llm.params import _matches

    return _matches(value, spec.annotation)
