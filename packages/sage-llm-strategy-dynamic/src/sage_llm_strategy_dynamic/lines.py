"""A least-squares line through recent points, older points discounted.

The controller prices what grows with a number of tokens (a draft's reading of what it missed,
a probe's loss against the tokens its draft had to read) from a few timed samples; a line
through them, refitted as they come, follows a machine that gets busier or quieter.
"""

from __future__ import annotations


class DiscountedLine:
    """Points ``(x, y)`` as the discounted sums a least-squares line needs (1, x, x^2, y, x*y),
    each new point discounting the older ones by ``memory``."""

    def __init__(self, memory: float) -> None:
        self.memory = memory
        self.sums = [0.0] * 5

    def add(self, x: float, y: float) -> None:
        out = [v * self.memory for v in self.sums]
        for i, v in enumerate((1.0, x, x * x, y, x * y)):
            out[i] += v
        self.sums = out

    @property
    def weight(self) -> float:
        """The discounted number of points (0 before the first)."""
        return self.sums[0]

    @property
    def mean_y(self) -> float:
        return self.sums[3] / self.sums[0]

    @property
    def y_per_x(self) -> float:
        """Total y over total x: what one point says when no line can be drawn yet."""
        return self.sums[3] / self.sums[1]

    def at(self, x: float) -> float | None:
        """The line (slope at least 0) at ``x``; ``None`` while the points' x do not differ by
        more than one (a line would be a guess)."""
        s0, s1, s2, sy, sxy = self.sums
        spread = s0 * s2 - s1 * s1
        if spread <= s0 * s0:
            return None
        slope = max(0.0, (s0 * sxy - s1 * sy) / spread)
        return (sy - slope * s1) / s0 + slope * x
