"""Engine states and what an engine can do, as the manager reports them."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sage.llm.control_plane.errors import InvalidRequestError


class EngineState(str, enum.Enum):
    """``starting`` -> ``ready`` -> ``draining`` -> ``stopped``; ``failed`` from any of them.

    Only a ready engine takes requests. A failed engine may go back to ``starting`` when the
    manager's :class:`RestartPolicy` allows it.
    """

    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Capabilities:
    """What an engine kind supports, so a policy (and a user) knows what switching means."""

    batching: bool
    """Runs several requests at once (vLLM's continuous batching) or one at a time."""
    switch_per_request: bool
    """Speculation can be turned on or off for each request without a restart."""
    switch_k_per_request: bool
    """The number of speculative tokens can change per request."""
    note: str = ""


@dataclass(frozen=True)
class RestartPolicy:
    """What to do when an engine dies: ``never`` restart, or restart ``on-failure``.

    ``max_restarts`` bounds restarts over the engine's life, so a model that crashes at once
    every time ends ``failed`` instead of looping.
    """

    mode: str = "never"
    max_restarts: int = 3

    def __post_init__(self) -> None:
        if self.mode not in ("never", "on-failure"):
            raise InvalidRequestError(
                f"restart policy must be 'never', 'on-failure' or 'on-failure:N', got "
                f"{self.mode!r}.",
                "restart_policy",
            )
        if self.max_restarts < 0:
            raise InvalidRequestError(
                f"max_restarts must be >= 0, got {self.max_restarts}.", "restart_policy"
            )

    @classmethod
    def parse(cls, value: RestartPolicy | str | None) -> RestartPolicy:
        if isinstance(value, RestartPolicy):
            return value
        if value is None:
            return cls()
        mode, _, count = value.partition(":")
        if count and not count.lstrip("-").isdigit():
            raise InvalidRequestError(
                f"restart policy {value!r}: the count after ':' must be a number ('on-failure:3').",
                "restart_policy",
            )
        return cls(mode, int(count)) if count else cls(mode)
