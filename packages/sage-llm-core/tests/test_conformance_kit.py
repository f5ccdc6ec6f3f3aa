"""The conformance kit skips, with a reason, every check it could not make."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

KIT_USER = '''
import pytest
from sage.llm.testing import StrategyConformanceTests
from sage.llm.testing.fake_plugins import fake_plugins

SEED = """
from sage.llm import SpeculativeStrategy

class MyCustomStrategy(SpeculativeStrategy):
    def __init__(self, **kwargs):
        self.config = kwargs

    def make_proposer(self, context):
        raise ValueError("needs a real model")

    def apply(self, engine_config):
        self.speculative_config(engine_config).update(method="ngram", num_speculative_tokens=2)
"""


@pytest.fixture(autouse=True)
def installed(tmp_path, monkeypatch):
    with fake_plugins(tmp_path, monkeypatch) as plugins:
        plugins.add("my-dist", {"my-custom": "seed_mod:MyCustomStrategy"}, SEED, module="seed_mod")
        yield


class TestSeed(StrategyConformanceTests):
    strategy_name = "my-custom"
    valid_params = {"k": 3}
'''


def test_kit_skips_what_it_did_not_check(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_kit_user=KIT_USER)
    result = pytester.runpytest("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=10, skipped=8)
    result.stdout.fnmatch_lines(
        [
            "*takes **kwargs and declares no checks: nothing to reject*",
            "*is not a dataclass, so immutability was not checked*",
            "*make_proposer raised ValueError with an empty ProposerContext*",
            "*no parameter is declared draft_model=True (optional): nothing to check*",
            "*implements no wrap_proposer (optional): nothing to check*",
            "*implements no with_num_speculative_tokens (optional): not checked*",
            "*implements no transformers_peer (optional): nothing to check*",
        ]
    )


BROKEN_HOOKS = '''
import pytest
from sage.llm.testing import StrategyConformanceTests
from sage.llm.testing.fake_plugins import fake_plugins

SOURCE = """
from dataclasses import dataclass, replace
from typing import ClassVar
from sage.llm import SpeculativeStrategy, param
from sage.llm.proposer import Proposal

class Reversing:
    def __init__(self, inner):
        self.inner = inner
    def start(self, prompt_ids):
        self.inner.start(prompt_ids)
    def propose(self, context_ids, max_tokens):
        return Proposal(list(reversed(self.inner.propose(context_ids, max_tokens).token_ids)))
    def on_verified(self, num_proposed, num_accepted):
        pass

@dataclass(frozen=True, kw_only=True)
class Broken(SpeculativeStrategy):
    # every optional hook gets something wrong
    name: ClassVar[str] = "broken"
    k: int = param(3, doc="tokens per step", ge=1)
    draft: str | None = param(None, doc="a draft", draft_model=True)
    other: int | None = param(None, doc="another draft?", draft_model=True)

    def apply(self, engine_config):
        self.speculative_config(engine_config).update(method="ngram", num_speculative_tokens=self.k)

    def wrap_proposer(self, inner):
        return Reversing(inner)

    def with_num_speculative_tokens(self, k):
        return replace(self, k=k + 1)

    def transformers_peer(self):
        return {"prompt_lookup_num_tokens": object()}
"""


@pytest.fixture(autouse=True)
def installed(tmp_path, monkeypatch):
    with fake_plugins(tmp_path, monkeypatch) as plugins:
        plugins.add("broken-dist", {"broken": "broken_mod:Broken"}, SOURCE, module="broken_mod")
        yield


class TestBroken(StrategyConformanceTests):
    strategy_name = "broken"
    invalid_params = [{"k": 0}]
'''


def test_kit_fails_optional_hooks_that_break_the_contract(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_kit_user=BROKEN_HOOKS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    failed = {
        "test_draft_model_parameter_is_one_string",
        "test_wrap_proposer_only_cuts_the_inner_proposal",
        "test_with_num_speculative_tokens_sets_k",
        "test_transformers_peer_is_generate_arguments",
    }
    result.assert_outcomes(passed=14, failed=len(failed))
    for name in failed:
        result.stdout.fnmatch_lines([f"FAILED *{name}*"])
