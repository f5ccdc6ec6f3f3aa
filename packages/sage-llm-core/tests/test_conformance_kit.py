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
    result.assert_outcomes(passed=10, skipped=4)
    result.stdout.fnmatch_lines(
        [
            "*takes **kwargs and declares no checks: nothing to reject*",
            "*is not a dataclass, so immutability was not checked*",
            "*make_proposer raised ValueError with an empty ProposerContext*",
        ]
    )
