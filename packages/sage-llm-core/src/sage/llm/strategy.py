"""The base class every speculative-decoding strategy derives from.

A strategy is a small, immutable value: its parameters (declared once with
:func:`sage.llm.params.param`) plus two faces an engine can use —

* :meth:`SpeculativeStrategy.apply` writes vLLM engine arguments (vLLM runs the loop);
* :meth:`SpeculativeStrategy.make_proposer` returns a per-step proposer for engines that run
  the draft/verify loop themselves (the reference engine).

Built-in strategies are dataclasses::

    @dataclass(frozen=True, kw_only=True)
    class NgramStrategy(SpeculativeStrategy):
        name = "ngram"
        n: int = param(5, doc="Longest n-gram to look up.", ge=1)

        def apply(self, engine_config):
            self.speculative_config(engine_config).update(method="ngram", ...)

A plain class with its own ``__init__`` works too (the seed's ``MyCustomStrategy``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from sage.llm import params as _params
from sage.llm.errors import EngineConfigError

if TYPE_CHECKING:
    from typing_extensions import Self

    from sage.llm.proposer import Proposer, ProposerContext


class SpeculativeStrategy:
    """Base class of speculative-decoding strategies; see the module docstring."""

    name: ClassVar[str | None] = None
    """Canonical strategy name; should equal the entry-point name that registers the class."""

    vllm_only: ClassVar[str | None] = None
    """Why the method cannot run on the reference engine (say, its draft reads the target's
    hidden states), for a strategy without ``make_proposer``: ``sage-llm generate`` and the
    control plane refuse it with this reason before they load a model. ``None``: the generic
    reason (no ``make_proposer``)."""

    def __post_init__(self) -> None:
        # Runs for dataclass subclasses: single-parameter checks from the declarations, then
        # the strategy's own cross-parameter checks.
        label = self.strategy_name()
        for spec in _params.params_of(type(self)):
            _params.check_value(label, spec, getattr(self, spec.name))
        self.validate()

    # -- hooks (see sage.llm.hookspecs) ---------------------------------------------------

    def apply(self, engine_config: dict[str, Any]) -> None:
        """Write vLLM engine arguments into ``engine_config``; every strategy implements it."""
        raise NotImplementedError(f"{type(self).__name__} must implement apply(engine_config)")

    def validate(self) -> None:
        """Check relations between parameters; the default accepts everything."""

    def make_proposer(self, context: ProposerContext) -> Proposer | None:
        """A proposer for engines that run the loop themselves; ``None``: vLLM only."""
        return None

    def vllm_proposer_class(self) -> type | str | None:
        """The class vLLM instantiates as this strategy's proposer; ``None``: vLLM's own."""
        return None

    def wrap_proposer(self, inner: Proposer) -> Proposer | None:
        """This strategy's policy around another (model-drafting) proposer; ``None``: none."""
        return None

    def with_num_speculative_tokens(self, k: int) -> Self | None:
        """A copy proposing ``k`` tokens per step; ``None``: the depth is not a setting."""
        return None

    def transformers_peer(self) -> dict[str, Any] | None:
        """transformers' ``generate`` arguments that do the same; ``None``: no equivalent."""
        return None

    # -- helpers for implementations -------------------------------------------------------

    @staticmethod
    def speculative_config(engine_config: dict[str, Any]) -> dict[str, Any]:
        """The ``speculative_config`` dict inside ``engine_config``, created if absent.

        Strategies update this dict instead of replacing it, so keys written by the user or by
        another layer survive.
        """
        section = engine_config.setdefault("speculative_config", {})
        if section is None:
            section = engine_config["speculative_config"] = {}
        if not isinstance(section, dict):
            raise EngineConfigError(
                f"engine_config['speculative_config'] must be a dict, got "
                f"{type(section).__name__}; pass a dict or leave it out."
            )
        return section

    @staticmethod
    def require_vllm_at_least(minimum: str, feature: str) -> None:
        """Raise :class:`~sage.llm.errors.VLLMVersionError` when the installed vLLM is older
        than ``minimum`` (no vLLM installed is fine: writing engine arguments needs none)."""
        from sage.llm.vllm_version import require_vllm_at_least

        require_vllm_at_least(minimum, feature)

    # -- parameters: one declaration, every form ---------------------------------------------

    @classmethod
    def parameters(cls) -> list[_params.ParamSpec]:
        """The declared parameters (name, type, default, doc, bounds)."""
        return _params.params_of(cls)

    @classmethod
    def strategy_name(cls) -> str:
        """The canonical name, from ``name`` or from the registry that loaded the class."""
        if cls.name:
            return cls.name
        from sage.llm.registry import name_of

        return name_of(cls) or cls.__name__

    def to_dict(self) -> dict[str, Any]:
        """Parameter values by name (only declared parameters)."""
        if dataclasses.is_dataclass(type(self)):
            return {s.name: getattr(self, s.name) for s in self.parameters()}
        config = getattr(self, "config", None)
        if isinstance(config, Mapping):  # the seed's MyCustomStrategy keeps kwargs here
            return dict(config)
        return {s.name: getattr(self, s.name) for s in self.parameters() if hasattr(self, s.name)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Self:
        """Build a validated instance from parameter values (the inverse of ``to_dict``)."""
        _params.check_names(cls.strategy_name(), cls, values)
        return cls(**values)

    def to_string(self, *, with_defaults: bool = False) -> str:
        """``"ngram:n=5,num_speculative_tokens=4"``, the form CLIs and config files use."""
        values = self.to_dict()
        if not with_defaults:
            defaults = {s.name: s.default for s in self.parameters() if not s.required}
            values = {k: v for k, v in values.items() if k not in defaults or defaults[k] != v}
        return _params.format_spec(self.strategy_name(), values)

    def __str__(self) -> str:
        return self.to_string()
