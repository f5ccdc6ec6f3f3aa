"""Third-party proposers inside vLLM, through ``speculative_config["method"] = "custom_class"``.

vLLM (0.32 to 0.33) loads the class named by ``speculative_config["model"]`` (a dotted path,
``"package.module.ClassName"``) in each engine worker process and calls it every step. The
interface it expects, read from ``vllm/v1/spec_decode/custom_class_proposer.py`` and the model
runners, is what :class:`VLLMProposer` spells out:

* ``__init__(self, vllm_config)`` — one positional argument, vLLM's ``VllmConfig``;
  ``vllm_config.speculative_config.num_speculative_tokens`` is the most tokens to propose.
* ``load_model(self, *args, **kwargs)`` — called once with the target model; the CPU runner
  calls it unconditionally, so it must exist even when it does nothing.
* ``propose(self, sampled_token_ids, num_tokens_no_spec, token_ids_cpu, slot_mappings=None)``
  → ``list[list[int]]``: one draft per request of the batch, in batch order (an empty list
  means "no draft"); request ``i``'s committed tokens are
  ``token_ids_cpu[i, :num_tokens_no_spec[i]]``, and an empty ``sampled_token_ids[i]`` means
  the request is not decoding this step.

A strategy opts in with the optional hook ``vllm_proposer_class()`` (see
:mod:`sage.llm.hookspecs`) and an ``apply`` that writes ``method="custom_class"``;
:func:`sage.llm.engines.vllm.config.wire_proposer_class` then fills in the class path. The
class must live at module level in an importable module, because vLLM imports it again in its
own worker processes.
Nothing here imports vLLM.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from typing import Any

from sage.llm.errors import EngineConfigError

CUSTOM_CLASS = "custom_class"
HOOK = "vllm_proposer_class"


class VLLMProposer:
    """Base class for vLLM ``custom_class`` proposers: implement :meth:`propose_one`.

    It does vLLM's batch bookkeeping, so a subclass only answers "given these committed
    tokens, what comes next?". Override :meth:`propose` itself for batched work.
    """

    def __init__(self, vllm_config: Any) -> None:
        self.vllm_config = vllm_config
        self.num_speculative_tokens: int = int(
            vllm_config.speculative_config.num_speculative_tokens
        )

    def load_model(self, *args: Any, **kwargs: Any) -> None:
        """Receive the target model; proposers without a model of their own ignore it."""

    def propose(
        self,
        sampled_token_ids: Sequence[Sequence[int]],
        num_tokens_no_spec: Any,
        token_ids_cpu: Any,
        slot_mappings: Any = None,
        **kwargs: Any,
    ) -> list[list[int]]:
        """One draft (possibly empty) per request, in batch order."""
        drafts: list[list[int]] = []
        for i, sampled in enumerate(sampled_token_ids):
            if not sampled:
                drafts.append([])
                continue
            context = self.committed_tokens(token_ids_cpu, num_tokens_no_spec, i)
            draft = self.propose_one(context, self.num_speculative_tokens)
            drafts.append([int(t) for t in draft[: self.num_speculative_tokens]])
        return drafts

    @staticmethod
    def committed_tokens(token_ids_cpu: Any, num_tokens_no_spec: Any, row: int) -> list[int]:
        """Batch row ``row``'s committed tokens (prompt and output so far) as Python ints."""
        tokens = token_ids_cpu[row, : int(num_tokens_no_spec[row])]
        return [int(t) for t in (tokens.tolist() if hasattr(tokens, "tolist") else tokens)]

    def propose_one(self, context_ids: Sequence[int], max_tokens: int) -> Sequence[int]:
        """Up to ``max_tokens`` draft tokens after ``context_ids``; none by default."""
        return []


def class_path(cls: type) -> str:
    """``"module.ClassName"`` for a vLLM proposer class, after checking vLLM can load it."""
    if not inspect.isclass(cls):
        raise EngineConfigError(f"a vLLM proposer must be a class, got {cls!r}.")
    qualname = cls.__qualname__
    module = cls.__module__
    if "<locals>" in qualname or "." in qualname or module == "__main__":
        raise EngineConfigError(
            f"vLLM proposer {module}.{qualname} must be defined at module level of an "
            "importable module (not in __main__ or inside a function): vLLM imports it again "
            "in its worker processes."
        )
    check_proposer_class(cls, f"{module}.{qualname}")
    return f"{module}.{qualname}"


def check_proposer_class(cls: Any, path: str) -> None:
    """The methods vLLM calls must exist with compatible signatures."""
    for method in ("propose", "load_model"):
        if not callable(getattr(cls, method, None)):
            raise EngineConfigError(
                f"vLLM proposer {path} has no {method}() method; vLLM calls "
                f"{method} on every custom_class proposer (see sage.llm.engines.vllm."
                "proposer.VLLMProposer for the interface)."
            )
    try:
        inspect.signature(cls).bind(object())
    except TypeError as exc:
        raise EngineConfigError(
            f"vLLM proposer {path} cannot be built as {path}(vllm_config): {exc}. Its "
            "__init__ must take exactly one positional argument, vLLM's VllmConfig."
        ) from None


def check_custom_class_model(section: Any, strategy: str) -> None:
    """``method: custom_class`` names its proposer in ``model``; that class must import."""
    model = section.get("model")
    if not isinstance(model, str) or not model:
        raise EngineConfigError(
            f"{strategy}: method 'custom_class' needs speculative_config['model'] = "
            "'package.module.ClassName' of the proposer, or a vllm_proposer_class() hook on "
            "the strategy."
        )
    load_class(model)


def load_class(path: str) -> type:
    """Import ``"module.ClassName"`` the way vLLM will, with errors that say what failed."""
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise EngineConfigError(
            f"custom_class proposer {path!r} must be a dotted path 'package.module.ClassName'."
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineConfigError(
            f"custom_class proposer {path!r}: module {module_name!r} cannot be imported "
            f"({exc}). Install the package that provides it."
        ) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise EngineConfigError(
            f"custom_class proposer {path!r}: module {module_name!r} has no {class_name!r}."
        )
    check_proposer_class(cls, path)
    return cls  # type: ignore[no-any-return]


def proposer_class_of(strategy: Any) -> str | None:
    """The dotted path of the strategy's vLLM proposer, or None when it has none."""
    hook = getattr(strategy, HOOK, None)
    if hook is None:
        return None
    result = hook()
    if result is None:
        return None
    if isinstance(result, str):
        load_class(result)
        return result
    return class_path(result)
