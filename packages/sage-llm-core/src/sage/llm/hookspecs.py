"""The single definition of what a strategy plugin may implement.

A strategy plugin is a class (the object its ``sage.llm.speculative`` entry point names). Its
methods whose names appear below are its hook implementations; pluggy checks each one's
signature against the spec when the plugin is loaded (see :mod:`sage.llm.plugins`), so a typo
in an argument name is reported with the plugin, its distribution and the hook, instead of
failing later inside an engine. Marking a method with :data:`hookimpl` is optional; it makes a
misspelled hook name (``def aply``) an error too.

This module is the one statement of the contract. Adding a hook here is backwards compatible:
every hook except ``apply`` is optional, and the :class:`~sage.llm.strategy.SpeculativeStrategy`
base class provides a default for it with the same signature (returning ``None``, "not
implemented"). ``tests/test_hookspecs.py`` checks the base class and docs/architecture.md
against this list, so neither can drift from it.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "sage.llm"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

REQUIRED_HOOKS = frozenset({"apply"})
"""Hooks every strategy must implement itself (not inherit from the base class)."""


class StrategySpec:
    """Hook specifications. Each is a method of the strategy class, called on an instance."""

    @hookspec(firstresult=True)
    def apply(self, engine_config: dict[str, Any]) -> None:
        """Write vLLM engine arguments into ``engine_config`` (required).

        Everything speculative goes into ``engine_config["speculative_config"]``, merged with
        what is already there. Top-level keys of older plugins are migrated by the core.
        """

    @hookspec(firstresult=True)
    def validate(self) -> None:
        """Check relations between parameters (``min_tokens <= max_tokens``) and raise
        :class:`~sage.llm.errors.InvalidParameterError`. Single parameters are checked from
        their declaration before this runs."""

    @hookspec(firstresult=True)
    def make_proposer(self, context: Any) -> Any:
        """Return a :class:`~sage.llm.proposer.Proposer` for engines that run the draft/verify
        loop themselves, or ``None`` when the strategy only configures vLLM.

        ``context`` is a :class:`~sage.llm.proposer.ProposerContext` (target model, tokenizer,
        vocabulary size, device, dtype, sampling settings). The engine calls it once per
        strategy and sampling setting and reuses the proposer across requests, calling
        ``start`` for each. A proposer that samples should also implement
        :class:`~sage.llm.proposer.SeededProposer` (``reseed(seed)``) so a seeded run is
        reproducible. Helpers for writing one are in :mod:`sage.llm.proposing`. Check it with
        :class:`sage.llm.testing.ProposerConformanceTests`."""

    @hookspec(firstresult=True)
    def vllm_proposer_class(self) -> Any:
        """Return the class (or its ``"module.ClassName"`` path) that vLLM instantiates as this
        strategy's proposer, or ``None`` (what not implementing the hook means).

        Optional. Used together with an ``apply`` that writes ``method="custom_class"``; the
        core puts the class path into ``speculative_config["model"]``. The class must follow
        vLLM's custom proposer interface, documented and checked in
        :mod:`sage.llm.engines.vllm.proposer` (``VLLMProposer`` is a base class for it)."""

    @hookspec(firstresult=True)
    def wrap_proposer(self, inner: Any) -> Any:
        """Return a :class:`~sage.llm.proposer.Proposer` that runs this strategy's policy (how
        many tokens to ask for each step, when to stop) around ``inner``, another proposer
        that drafts with a model, or ``None`` when the strategy cannot run around one.

        Optional. ``sage-llm replay`` uses it to replay the strategy over a draft model's
        recorded predictions (``inner`` is then a replayed draft whose time per token is
        modelled). A fixed-depth strategy asks ``inner`` for its ``k`` tokens; an adaptive one
        puts its controller around it. ``inner`` may be an
        :class:`~sage.llm.proposer.EarlyStoppingProposer`, whose early stop the wrapper may
        set."""

    @hookspec(firstresult=True)
    def with_num_speculative_tokens(self, k: int) -> Any:
        """Return a copy of this strategy that proposes ``k`` tokens per step (``k >= 1``), or
        ``None`` when the strategy has no such setting (it chooses its depth itself).

        Optional. The control plane's scheduling policies use it to speculate shallower under
        load (:class:`~sage.llm.control_plane.policies.Decision`); a strategy that returns
        ``None`` runs as configured."""

    @hookspec(firstresult=True)
    def transformers_peer(self) -> Any:
        """Return the keyword arguments of transformers' ``model.generate`` that do what this
        strategy does, or ``None`` when transformers has no equivalent.

        Optional. ``sage-llm bench`` runs the peer beside the strategy, on the same prompts,
        so the comparison is like for like. Prompt lookup: ``prompt_lookup_num_tokens`` and
        ``max_matching_ngram_size``. Assisted generation: ``assistant_model`` (a model name,
        loaded as a draft model is) plus the assistant's settings ``num_assistant_tokens``,
        ``num_assistant_tokens_schedule`` and ``assistant_confidence_threshold``, each left out
        for transformers' default. Values must be JSON-serializable."""


SPEC_NAMES = frozenset(name for name in vars(StrategySpec) if not name.startswith("_"))


class ControlPlaneSpec:
    """Hooks of the control plane (:mod:`sage.llm.control_plane`), for observers and policies.

    A control-plane plugin is any object (a module, a class or an instance) with methods of
    these names; register it with ``ControlPlaneManager(plugins=[...])`` or through the
    ``sage.llm.control_plane`` entry-point group, exactly as strategies use theirs. Every hook
    is optional. Observers are called on the engine's thread right after the event: keep them
    quick, and an exception in one is logged, never allowed to break serving.
    """

    @hookspec
    def register_scheduling_policies(self, register: Any) -> None:
        """Call ``register(name, factory)`` for each policy this plugin provides; ``factory()``
        returns a :class:`~sage.llm.control_plane.policies.SchedulingPolicy`."""

    @hookspec
    def on_engine_started(self, manager: Any, engine_id: str, info: dict[str, Any]) -> None:
        """An engine became ready (also after a restart); ``info`` is ``engine_info()``."""

    @hookspec
    def on_engine_stopped(self, manager: Any, engine_id: str, info: dict[str, Any]) -> None:
        """An engine was stopped and released its model."""

    @hookspec
    def on_engine_failed(
        self, manager: Any, engine_id: str, info: dict[str, Any], error: BaseException
    ) -> None:
        """An engine failed to start or died; called before its queued and running requests
        are failed with :class:`~sage.llm.control_plane.errors.EngineFailedError`."""

    @hookspec
    def on_request_finished(
        self, manager: Any, engine_id: str, completion: Any, outcome: str
    ) -> None:
        """A request ended. ``outcome`` is ``ok`` (``completion`` is a
        :class:`~sage.llm.control_plane.requests.Completion`), or ``error``, ``cancelled``
        or ``timeout`` (``completion`` is ``None``)."""

    @hookspec
    def on_policy_decision(self, manager: Any, engine_id: str, decision: Any) -> None:
        """The scheduling policy decided for the next request on ``engine_id``
        (a :class:`~sage.llm.control_plane.policies.Decision`)."""


CONTROL_PLANE_HOOKS = frozenset(n for n in vars(ControlPlaneSpec) if not n.startswith("_"))
CONTROL_PLANE_GROUP = "sage.llm.control_plane"
"""Entry-point group of control-plane plugins (observers, exporters, policies)."""
