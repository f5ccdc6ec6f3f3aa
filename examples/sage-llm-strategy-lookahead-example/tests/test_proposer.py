"""The strategies run on the reference engine: their proposer, checked with the core's kit.

The lookup itself needs nothing but the core. The checks that generate text (the conformance
kit's and the run of `sage-llm generate` below) need torch and transformers
(`pip install 'sage-llm-core[transformers,testing]'`) and are skipped, with the reason, where
they are missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sage.llm import get_strategy
from sage.llm.proposing import Proposer, ProposerContext
from sage.llm.testing import ProposerConformanceTests


class TestMyCustomProposer(ProposerConformanceTests):
    strategy_name = "my-custom"
    valid_params = {"k": 3, "lookup": 2}


class TestMyLookupProposer(ProposerConformanceTests):
    strategy_name = "my-lookup"
    valid_params = {"k": 4, "lookup": 3}


def test_proposes_what_followed_the_last_ngram() -> None:
    proposer = get_strategy("my-custom", k=3, lookup=2).make_proposer(ProposerContext())
    assert isinstance(proposer, Proposer)
    proposer.start([1, 2, 3, 4, 5, 1, 2])
    assert proposer.propose([1, 2, 3, 4, 5, 1, 2], max_tokens=8).token_ids == [3, 4, 5]
    assert proposer.propose([1, 2, 3, 4, 5, 1, 2], max_tokens=2).token_ids == [3, 4]
    assert proposer.propose([7, 8, 9], max_tokens=8).token_ids == []  # no earlier match


def test_generate_on_a_tiny_model_equals_plain_greedy(tmp_path: Path) -> None:
    """`sage-llm generate --strategy my-custom` on the reference engine: the user's command."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from sage.llm.testing.tiny import save_tiny_model

    model = save_tiny_model(tmp_path / "tiny", 80, seed=2)  # random weights, a char tokenizer
    args = ["abc abc abc abc", "--no-chat", "--model", str(model), "--max-tokens", "24", "--json"]
    out = {}
    for strategy in ("my-custom:k=3,lookup=2", "none"):
        proc = subprocess.run(
            [sys.executable, "-m", "sage.llm", "generate", *args, "--strategy", strategy],
            capture_output=True,
            text=True,
            env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1"},
        )
        assert proc.returncode == 0, proc.stderr
        out[strategy] = json.loads(proc.stdout)
    speculative, plain = out["my-custom:k=3,lookup=2"], out["none"]
    assert speculative["token_ids"] == plain["token_ids"]
    assert speculative["metrics"]["num_drafts"] > 0, "the repeated prompt should be looked up"
