"""The remote error model of a transformer area (Tianjin specification §6.1.3), in integers.

What the summary meter of an area measures is what its user meters measure, corrected by
their errors, plus the line loss:

    S_t = Σ_i M_it (1 - e_i) + a + c Q_t,      Q_t = (Σ_i M_it)² / Q_SCALE

with M_it the energy user meter i registered in period t (Wh), e_i its relative error, a
the fixed loss of a period (the transformer's no-load loss) and c Q_t the load-dependent
loss (I²R: quadratic in the current). A loss proportional to the load cannot be told
apart from an error common to every meter, so the model has none. So

    y_t = Σ_i M_it - S_t = Σ_i M_it e_i - a - c Q_t

is linear in θ = (e_1..e_n, a, c), and θ follows by weighted least squares from the
normal equations G θ = b, G = Σ_t w_t x_t x_tᵀ, b = Σ_t w_t x_t y_t, x_t = (M_1t..M_nt,
-1, -Q_t), w_t = 1/S_t² (the summary meter's noise is relative to what it reads).

Everything is integer arithmetic, so every node computes the same bits:
- `Accumulator` adds a period exactly (G, b and Σ y² are sums of integer products);
- `estimate` factors G = L D Lᵀ in fixed point (FRAC_BITS fraction bits, floor
  rounding, integer square roots), solves for θ, and takes each error's standard error
  from the residual variance and the diagonal of G⁻¹;
- `verdict` reports a meter whose error is beyond its class limit by more than 2.326
  standard errors (2.576 when the standard error is not below the limit) as out of
  tolerance, one inside it by as much as within, else undecided: a meter right at its
  limit is reported at most 1 time in 100.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

FRAC_BITS = 96  # fixed point: a real r is the integer floor(r * 2**FRAC_BITS)
ONE = 1 << FRAC_BITS
Q_SCALE = 10_000
WEIGHT_SCALE = 1 << 128  # a period's weight is WEIGHT_SCALE // S² (S in Wh, up to 10**18)
PPM = 1_000_000
ANCHOR_WEIGHT = 1_000  # the pseudo-observation's weight, in units of the largest meter's
# 99 % confidence that |e| is beyond (or within) the limit: one tail matters while the
# standard error is below the limit (z 2.326); when it is not, an estimate may stray past
# either bound, and each tail gets half (z 2.576)
Z_MILLI, Z_MILLI_WIDE = 2_326, 2_576


@dataclass
class Accumulator:
    """The normal equations of one area, over the periods added so far."""

    meters: int
    gram: list[list[int]] = field(default_factory=list)  # G, lower triangle used
    moment: list[int] = field(default_factory=list)  # b
    y_squares: int = 0
    periods: int = 0

    def __post_init__(self) -> None:
        size = self.meters + 2
        if not self.gram:
            self.gram = [[0] * size for _ in range(size)]
            self.moment = [0] * size

    def add(self, user_wh: list[int], summary_wh: int) -> None:
        """One period: each user meter's energy (in the area's order) and the summary's."""
        if len(user_wh) != self.meters:
            raise ValueError(f"expected {self.meters} user meters, got {len(user_wh)}")
        if summary_wh <= 0:  # nothing delivered (an outage): nothing to weigh
            return
        total = sum(user_wh)
        x = [*user_wh, -1, -(total * total // Q_SCALE)]
        y = total - summary_wh
        # weighted least squares: the summary meter's noise is relative, so a period's
        # variance grows with its energy squared; weight 1/S² (as an integer)
        w = WEIGHT_SCALE // (summary_wh * summary_wh)
        wx = [w * xi for xi in x]
        gram, moment = self.gram, self.moment
        for i, xi in enumerate(wx):
            if xi:
                row = gram[i]
                for j in range(i + 1):
                    row[j] += xi * x[j]
                moment[i] += xi * y
        self.y_squares += w * y * y
        self.periods += 1

    def decay(self, numerator: int, denominator: int) -> None:
        """Forget old periods geometrically (a meter that drifts is judged on recent data):
        every sum is multiplied by numerator/denominator, rounded down."""
        for row in self.gram:
            for j, value in enumerate(row):
                row[j] = value * numerator // denominator
        self.moment = [v * numerator // denominator for v in self.moment]
        self.y_squares = self.y_squares * numerator // denominator
        self.periods = self.periods * numerator // denominator


@dataclass(frozen=True)
class Estimate:
    error_ppm: tuple[int, ...]  # each user meter's relative error (over-registration > 0)
    stderr_ppm: tuple[int, ...]  # its standard error
    fixed_loss_wh: int  # a, per period
    residual_ppm: int  # a period's residual standard deviation, of the summary's reading


def estimate(acc: Accumulator, anchored: list[bool] | None = None) -> Estimate | None:
    """Least squares on the accumulated periods, the mean error of the `anchored` meters
    (all by default) held at zero; None when the data cannot determine the errors (fewer
    periods than unknowns, or meters whose readings are proportional).

    Why the anchor: an error common to every meter moves y like a loss that grows with
    the load, and over a day's range of load the quadratic loss is nearly linear, so the
    common part is poorly determined (standard errors of several % in an area of 50). The
    errors relative to the area's are determined well. The meters of an area were verified
    before installation, so their mean error is taken as zero: the constraint enters as a
    heavily weighted pseudo-observation Σ e_i = 0 over the anchored meters."""
    size = acc.meters + 2
    if acc.periods <= size:
        return None
    anchored = anchored if anchored is not None else [True] * acc.meters
    weight = ANCHOR_WEIGHT * max(acc.gram[i][i] for i in range(acc.meters))
    gram = [row[:] for row in acc.gram]
    for i in range(acc.meters):
        for j in range(i + 1):
            if anchored[i] and anchored[j]:
                gram[i][j] += weight
    factors = _ldl(gram)
    if factors is None:
        return None
    lower, diag = factors
    theta = _solve(lower, diag, acc.moment)  # scaled by ONE
    # residual sum of squares: Σy² - θᵀb (exact for the least-squares θ, up to rounding)
    rss = max(acc.y_squares - sum(t * m for t, m in zip(theta, acc.moment, strict=True)) // ONE, 0)
    variance_scaled = rss * ONE // (acc.periods - size)  # σ², scaled by ONE
    inverse_diag = _inverse_diagonal(lower, diag)  # (G⁻¹)_ii, scaled by ONE²
    # var(θ_i) = σ² (G⁻¹)_ii, scaled by ONE³; its square root by ONE^1.5
    stderr = [math.isqrt(variance_scaled * d) for d in inverse_diag[: acc.meters]]
    half = 3 * FRAC_BITS // 2
    return Estimate(
        tuple(_rounded(t * PPM) for t in theta[: acc.meters]),
        tuple((s * PPM + (1 << (half - 1))) >> half for s in stderr),
        _rounded(theta[acc.meters]),  # the coefficient of the feature -1 is a itself
        math.isqrt(variance_scaled * PPM * PPM // (ONE * WEIGHT_SCALE)),
    )


def judge(acc: Accumulator, limits_ppm: list[int]) -> tuple[Estimate, list[str]] | None:
    """Each meter's verdict against its class limit. A meter found out of tolerance is
    taken out of the anchor and the area estimated again, so that a large error (a
    bypass, say) does not shift the others; None if the data cannot determine them."""
    first = estimate(acc)
    if first is None:
        return None
    verdicts = [verdict(e, s, lim) for e, s, lim in
                zip(first.error_ppm, first.stderr_ppm, limits_ppm, strict=True)]  # fmt: skip
    if "out_of_tolerance" not in verdicts:
        return first, verdicts
    again = estimate(acc, [v != "out_of_tolerance" for v in verdicts])
    if again is None:
        return first, verdicts
    return again, [verdict(e, s, lim) for e, s, lim in
                   zip(again.error_ppm, again.stderr_ppm, limits_ppm, strict=True)]  # fmt: skip


def verdict(error_ppm: int, stderr_ppm: int, limit_ppm: int) -> str:
    """'out_of_tolerance', 'within' or 'undecided', each at 99 % confidence."""
    margin = stderr_ppm * (Z_MILLI if stderr_ppm < limit_ppm else Z_MILLI_WIDE) // 1000
    if abs(error_ppm) - margin > limit_ppm:
        return "out_of_tolerance"
    if abs(error_ppm) + margin <= limit_ppm:
        return "within"
    return "undecided"


def _rounded(scaled: int) -> int:
    """A fixed-point value to the nearest integer (halves up)."""
    return (scaled + ONE // 2) >> FRAC_BITS


def _ldl(gram: list[list[int]]) -> tuple[list[list[int]], list[int]] | None:
    """G = L D Lᵀ: L unit lower triangular (scaled by ONE), D scaled by ONE; None if G is
    not positive definite at this precision."""
    size = len(gram)
    lower = [[0] * size for _ in range(size)]
    diag = [0] * size
    for j in range(size):
        lj = lower[j]
        work = [lj[k] * diag[k] >> FRAC_BITS for k in range(j)]  # L_jk D_k, scaled by ONE
        d = gram[j][j] * ONE - sum(lj[k] * work[k] for k in range(j)) // ONE
        if d <= 0:
            return None
        diag[j] = d
        lj[j] = ONE
        for i in range(j + 1, size):
            li = lower[i]
            s = gram[i][j] * ONE - sum(li[k] * work[k] for k in range(j)) // ONE
            li[j] = s * ONE // d
    return lower, diag


def _solve(lower: list[list[int]], diag: list[int], moment: list[int]) -> list[int]:
    """θ (scaled by ONE) from L D Lᵀ θ = b."""
    size = len(diag)
    z = [0] * size
    for i in range(size):  # L z = b, z scaled by ONE
        z[i] = moment[i] * ONE - sum(lower[i][k] * z[k] for k in range(i)) // ONE
    w = [z[i] * ONE // diag[i] for i in range(size)]  # D w = z
    theta = [0] * size
    for i in reversed(range(size)):  # Lᵀ θ = w
        theta[i] = w[i] - sum(lower[k][i] * theta[k] for k in range(i + 1, size)) // ONE
    return theta


def _inverse_diagonal(lower: list[list[int]], diag: list[int]) -> list[int]:
    """(G⁻¹)_ii = Σ_k (L⁻¹)_ki² / D_k, scaled by ONE² (L⁻¹ column by column): the
    weighted G is large (WEIGHT_SCALE), so its inverse needs the extra fraction bits."""
    size = len(diag)
    out = [0] * size
    for i in range(size):
        column = [0] * size  # (L⁻¹)_ki for k >= i, scaled by ONE
        column[i] = ONE
        for k in range(i + 1, size):
            lk = lower[k]
            column[k] = -sum(lk[m] * column[m] for m in range(i, k)) // ONE
        out[i] = sum(c * c * ONE // diag[k] for k, c in enumerate(column) if k >= i)
    return out
