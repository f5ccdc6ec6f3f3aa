"""Exceptions raised by sage-llm.

Every error says what was wrong and what to do next. They subclass the built-in exception a
caller would naturally catch (``LookupError`` for names, ``ValueError`` for parameters,
``ImportError`` for missing distributions) so that generic handlers keep working.
"""

from __future__ import annotations

from collections.abc import Sequence


class SageLLMError(Exception):
    """Base class of every error raised by sage-llm."""


class StrategyError(SageLLMError):
    """Something is wrong with a strategy name, plugin or parameter."""


class UnknownStrategyError(StrategyError, LookupError):
    """No installed plugin provides the requested strategy name."""

    def __init__(
        self,
        name: str,
        available: Sequence[str],
        suggestions: Sequence[str] = (),
        install_hint: str | None = None,
        *,
        none_allowed: bool = False,
    ) -> None:
        self.name = name
        self.available = list(available)
        self.suggestions = list(dict.fromkeys(suggestions))  # each once, best first
        self.install_hint = install_hint
        lines = [f"unknown speculative strategy {name!r}."]
        if install_hint:
            lines.append(install_hint)
        if self.suggestions:
            lines.append("Did you mean: " + ", ".join(repr(s) for s in self.suggestions) + "?")
        if self.available:
            lines.append("Installed strategies: " + ", ".join(self.available) + ".")
        elif none_allowed:
            lines.append(
                "Strategy plugins are installed, but SAGE_LLM_PLUGINS allows none of them: "
                "add their names (or distributions) to it, or unset it."
            )
        else:
            lines.append(
                "No strategy plugin is installed: pip install sage-llm-strategy-ngram "
                "(or -draft, -dynamic)."
            )
        super().__init__(" ".join(lines))


class AmbiguousStrategyError(StrategyError, LookupError):
    """Two or more distributions register the same strategy name."""

    def __init__(self, name: str, distributions: Sequence[str]) -> None:
        self.name = name
        self.distributions = list(distributions)
        choices = " or ".join(f"'{d}:{name}'" for d in self.distributions)
        super().__init__(
            f"strategy name {name!r} is registered by several distributions: "
            f"{', '.join(self.distributions)}. Pick one with {choices} "
            f"(or get_strategy({name!r}, distribution=...)), or uninstall all but one."
        )


class StrategyDisabledError(StrategyError, LookupError):
    """The strategy is installed but SAGE_LLM_PLUGINS does not allow it to load."""


class StrategyLoadError(StrategyError):
    """A strategy plugin is installed but could not be imported or failed validation."""

    def __init__(
        self,
        name: str,
        distribution: str | None,
        version: str | None,
        reason: str,
    ) -> None:
        self.name = name
        self.distribution = distribution
        self.version = version
        self.reason = reason
        where = f"{distribution} {version}" if distribution else "an unknown distribution"
        super().__init__(f"strategy {name!r} from {where} could not be loaded: {reason}")


class StrategyPluginError(StrategyError):
    """A loaded strategy's own code raised while the core called one of its hooks.

    The core did nothing wrong and neither did the user: the message names the strategy, its
    distribution and the hook, so the report goes to whoever maintains that distribution.
    """

    def __init__(
        self,
        name: str,
        distribution: str | None,
        version: str | None,
        hook: str,
        reason: str,
    ) -> None:
        self.name = name
        self.distribution = distribution
        self.version = version
        self.hook = hook
        self.reason = reason
        where = f"{distribution} {version}" if distribution else "an unknown distribution"
        super().__init__(
            f"strategy {name!r} from {where} failed in {hook}(): {reason}. This is a bug in "
            f"{distribution or 'the plugin'}; report it to its maintainers."
        )


class IncompatibleStrategyError(StrategyLoadError):
    """The plugin was built for a sage-llm-core version other than the installed one."""


class InvalidParameterError(StrategyError, ValueError):
    """A strategy parameter has the wrong type, is out of range, or is unknown."""

    def __init__(self, strategy: str, message: str, parameter: str | None = None) -> None:
        self.strategy = strategy
        self.parameter = parameter
        super().__init__(f"{strategy}: {message}")


class StrategySpecError(StrategyError, ValueError):
    """A strategy string such as ``"ngram:n=5"`` could not be parsed."""


class StrategyNotInstalledError(ImportError):
    """``from sage.llm import NgramStrategy`` when the providing distribution is missing."""


class EngineConfigError(SageLLMError, ValueError):
    """A strategy wrote engine arguments that the engine cannot accept."""


class VLLMVersionError(SageLLMError, RuntimeError):
    """The installed vLLM is too old (or too new) for the requested feature."""
