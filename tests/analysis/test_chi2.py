"""The colluder test's chi-square quantiles (analysis.chi2) against the chi-square
survival function, computed here independently (the regularised incomplete gamma)."""

from __future__ import annotations

import math

import pytest

from analysis.chi2 import QUANTILES_MILLI, chi_square_limit_milli


def chi_square_survival(x: float, dof: int) -> float:
    """Q(dof/2, x/2) = 1 - P, with P from its power series (fine for these x)."""
    a, half = dof / 2, x / 2
    term = total = 1 / a
    n = 0
    while term > total * 1e-17:
        n += 1
        term *= half / (a + n)
        total += term
    return 1 - math.exp(-half + a * math.log(half) - math.lgamma(a)) * total


@pytest.mark.parametrize("alpha_ppm", sorted(QUANTILES_MILLI))
def test_each_quantile_leaves_its_level_above_it(alpha_ppm: int) -> None:
    for dof, limit in enumerate(QUANTILES_MILLI[alpha_ppm], start=1):
        tail = chi_square_survival(limit / 1000, dof)
        assert tail == pytest.approx(alpha_ppm / 1e6, rel=0.01), (dof, tail)


def test_beyond_the_table_the_limit_never_falls_below_the_quantile() -> None:
    for alpha_ppm in sorted(QUANTILES_MILLI):
        for dof in (41, 60, 100):
            tail = chi_square_survival(chi_square_limit_milli(dof, alpha_ppm) / 1000, dof)
            assert tail <= alpha_ppm / 1e6
    assert chi_square_limit_milli(0) == 0
