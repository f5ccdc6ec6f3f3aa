"""The accept/reject rule on synthetic distributions: exact where possible, chi-square otherwise.

Speculative sampling is lossless when every emitted token is distributed as the target's ``p``.
For a single verification step this is checkable without a model: draw many verdicts for fixed
``p`` and ``q`` and compare the first emitted token's frequencies with ``p``.
"""

from __future__ import annotations

import pytest
import torch

from sage.llm.engines.transformers.sampling import SamplingParams
from sage.llm.engines.transformers.verify import verify, verify_greedy, verify_sampling

TRIALS = 6000
CHI2_CRITICAL_5_DOF = 20.52  # p = 0.001: a correct implementation fails 1 run in 1000


def chi_square(counts: torch.Tensor, probs: torch.Tensor) -> float:
    expected = probs * counts.sum()
    mask = expected > 0
    assert counts[~mask].sum() == 0, "a token with zero target probability was emitted"
    return float((((counts - expected) ** 2)[mask] / expected[mask]).sum())


def first_token_counts(
    p: torch.Tensor, q: torch.Tensor | None, proposed_from_q: bool
) -> torch.Tensor:
    """Emit ``TRIALS`` verdicts of a one-token proposal and count the first emitted token."""
    g = torch.Generator().manual_seed(1234)
    counts = torch.zeros(p.shape[-1])
    fixed = int(torch.argmin(p[0]))  # a deterministic proposal the target rarely wants
    for _ in range(TRIALS):
        if proposed_from_q:
            assert q is not None
            x = int(torch.multinomial(q[0], 1, generator=g))
        else:
            x = fixed
        verdict = verify_sampling(p, [x], q, g)
        counts[verdict.tokens[0]] += 1
    return counts


P = torch.tensor(
    [
        [0.40, 0.25, 0.15, 0.10, 0.07, 0.03],
        [0.05, 0.05, 0.30, 0.30, 0.20, 0.10],
    ]
)
Q = torch.tensor([[0.05, 0.10, 0.10, 0.25, 0.30, 0.20]])


def test_draft_model_rule_keeps_the_target_distribution() -> None:
    counts = first_token_counts(P, Q, proposed_from_q=True)
    assert chi_square(counts, P[0]) < CHI2_CRITICAL_5_DOF


def test_point_mass_rule_keeps_the_target_distribution() -> None:
    counts = first_token_counts(P, None, proposed_from_q=False)
    assert chi_square(counts, P[0]) < CHI2_CRITICAL_5_DOF


def test_wrong_rule_is_detected() -> None:
    """The check has teeth: always accepting the draft token gives q, and q fails it."""
    g = torch.Generator().manual_seed(5)
    counts = torch.zeros(6)
    for _ in range(TRIALS):
        counts[int(torch.multinomial(Q[0], 1, generator=g))] += 1
    assert chi_square(counts, P[0]) > CHI2_CRITICAL_5_DOF


def test_point_mass_acceptance_probability_is_p_of_x() -> None:
    g = torch.Generator().manual_seed(99)
    x = 1  # p(x) = 0.25
    accepted = sum(verify_sampling(P, [x], None, g).num_accepted for _ in range(TRIALS))
    rate = accepted / TRIALS
    sd = (0.25 * 0.75 / TRIALS) ** 0.5
    assert abs(rate - 0.25) < 4 * sd


def test_bonus_token_comes_from_the_last_row() -> None:
    p = torch.zeros(2, 6)
    p[0, 2] = 1.0  # the proposal is certain to be accepted
    p[1] = P[1]
    g = torch.Generator().manual_seed(3)
    counts = torch.zeros(6)
    for _ in range(TRIALS):
        verdict = verify_sampling(p, [2], None, g)
        assert verdict.num_accepted == 1
        counts[verdict.tokens[1]] += 1
    assert chi_square(counts, P[1]) < CHI2_CRITICAL_5_DOF


def test_rejected_token_is_never_resampled_for_a_point_mass() -> None:
    p = torch.tensor([[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    g = torch.Generator().manual_seed(0)
    for _ in range(500):
        verdict = verify_sampling(p, [0], None, g)
        if verdict.num_accepted == 0:
            assert verdict.tokens == [1]


def test_zero_probability_proposal_is_always_rejected() -> None:
    p = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    g = torch.Generator().manual_seed(0)
    for _ in range(100):
        assert verify_sampling(p, [0], None, g).tokens == [1]


def test_greedy_accepts_the_matching_prefix_then_corrects() -> None:
    logits = torch.tensor(
        [[0.0, 5.0, 0.0], [0.0, 0.0, 5.0], [5.0, 0.0, 0.0], [0.0, 5.0, 0.0]]
    )  # argmax per row: 1, 2, 0, 1
    assert verify_greedy(logits, [1, 2, 2]).tokens == [1, 2, 0]
    assert verify_greedy(logits, [1, 2, 0]).tokens == [1, 2, 0, 1]
    assert verify_greedy(logits, [0, 2, 0]).tokens == [1]
    assert verify_greedy(logits[:1], []).tokens == [1]


def test_verify_checks_row_count() -> None:
    with pytest.raises(ValueError, match="needs 3 rows"):
        verify(torch.zeros(2, 4), [1, 2], None, SamplingParams())


def test_draft_probs_shape_is_checked() -> None:
    with pytest.raises(ValueError, match="draft_probs must have shape"):
        verify_sampling(torch.full((2, 4), 0.25), [1], torch.full((2, 4), 0.25))
