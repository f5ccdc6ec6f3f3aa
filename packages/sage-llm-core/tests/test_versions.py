"""The fast core-range check gives packaging's answer wherever it answers at all."""

from __future__ import annotations

import itertools

import pytest
from packaging.specifiers import SpecifierSet

from sage.llm._versions import fast_contains

SPECS = [
    ">=1.0,<2",
    ">=1.0.0, <2.0.0",
    "==1.0",
    "==1",
    "!=1.0.0",
    ">1.0",
    "<=1.0.0",
    ">=0.9,!=1.0.1,<1.1",
    ">=2.0",
    "<1",
    "",
    "~=1.0",
    "==1.*",
    ">=1.0rc1",
    ">=1.0.post1",
]
VERSIONS = [
    "1.0.0",
    "1",
    "1.0",
    "1.0.1",
    "0.9",
    "1.1",
    "2.0.0",
    "2",
    "10.0",
    "1.0.0rc1",
    "1.0+local",
]


@pytest.mark.parametrize(("spec", "version"), list(itertools.product(SPECS, VERSIONS)))
def test_fast_path_agrees_with_packaging(spec: str, version: str) -> None:
    fast = fast_contains(spec, version)
    if fast is not None:
        assert fast == SpecifierSet(spec).contains(version, prereleases=True)


def test_fast_path_answers_the_common_forms() -> None:
    assert fast_contains(">=1.0,<2", "1.0.0") is True
    assert fast_contains(">=2.0", "1.0.0") is False
    assert fast_contains("~=1.0", "1.0.0") is None
    assert fast_contains(">=1.0", "1.0.0rc1") is None
