"""A chi-square check that sampled tokens follow the target's distribution.

Speculative sampling is lossless only if what it emits is distributed as the target's own
samples; the sampling tests of the core and of strategy packages count emitted tokens (or
sequences) and compare them with the target's probabilities. Pure Python, so a plugin's test
needs nothing beyond ``sage-llm-core[testing]``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping


def chi2_critical(df: int, z: float = 3.09) -> float:
    """Wilson-Hilferty approximation of the chi-square quantile (z = 3.09: p = 0.001)."""
    h = 2.0 / (9.0 * df)
    return df * (1.0 - h + z * math.sqrt(h)) ** 3


def chi_square(
    counts: Mapping[Hashable, int], probs: Mapping[Hashable, float], total: int
) -> tuple[float, int]:
    """The statistic and its degrees of freedom over cells, pooling cells with an expected
    count under 5 into one (the usual validity rule). A drawn cell of probability 0 fails at
    once: no sample size makes that a fluctuation."""
    stat, df = 0.0, -1
    pooled_obs = pooled_exp = 0.0
    for cell, p in probs.items():
        expected, observed = p * total, counts.get(cell, 0)
        if expected < 5:
            pooled_obs += observed
            pooled_exp += expected
            continue
        stat += (observed - expected) ** 2 / expected
        df += 1
    if pooled_exp > 0:
        stat += (pooled_obs - pooled_exp) ** 2 / pooled_exp
        df += 1
    impossible = [k for k in counts if probs.get(k, 0.0) == 0.0]
    assert not impossible, f"tokens with zero target probability were generated: {impossible}"
    return stat, df
