"""Chi-square quantiles for the surveillance contract's colluder test, as integers.

Upper quantiles x 1000 for 1 to 40 degrees of freedom, at the levels a chain can
choose (`vehicle_alpha_ppm`, `doubt_alpha_ppm`): 1 in a million, a thousand and a
hundred. Computed once with scipy.stats.chi2.isf and rounded;
tests/analysis/test_chi2.py checks them against the chi-square survival function
computed independently. Beyond 40 degrees of freedom the quantile grows almost
linearly; it is extended along the last step (a vehicle voting at more than 40
dispensers is rare), so it is never below the true value, and above it by 1 % at 60
and 4 % at 100: the test is a little stricter out there, never laxer.
"""

from __future__ import annotations

QUANTILES_MILLI = {
    1: (23928, 27631, 30665, 33377, 35888, 38258, 40522, 42701, 44811, 46863, 48866, 50825,
        52747, 54635, 56493, 58324, 60131, 61914, 63677, 65421, 67147, 68856, 70550, 72229,
        73895, 75547, 77188, 78817, 80436, 82044, 83643, 85232, 86812, 88383, 89947, 91502,
        93051, 94592, 96126, 97653),
    1000: (10828, 13816, 16266, 18467, 20515, 22458, 24322, 26124, 27877, 29588, 31264,
           32909, 34528, 36123, 37697, 39252, 40790, 42312, 43820, 45315, 46797, 48268,
           49728, 51179, 52620, 54052, 55476, 56892, 58301, 59703, 61098, 62487, 63870,
           65247, 66619, 67985, 69346, 70703, 72055, 73402),
    10_000: (6635, 9210, 11345, 13277, 15086, 16812, 18475, 20090, 21666, 23209, 24725,
             26217, 27688, 29141, 30578, 32000, 33409, 34805, 36191, 37566, 38932, 40289,
             41638, 42980, 44314, 45642, 46963, 48278, 49588, 50892, 52191, 53486, 54776,
             56061, 57342, 58619, 59893, 61162, 62428, 63691),
}  # fmt: skip


def chi_square_limit_milli(dof: int, alpha_ppm: int = 1) -> int:
    """The upper alpha quantile of chi-square with `dof` degrees of freedom, x 1000."""
    table = QUANTILES_MILLI[alpha_ppm]
    if dof < 1:
        return 0
    if dof <= len(table):
        return table[dof - 1]
    return table[-1] + (dof - len(table)) * (table[-1] - table[-2])
