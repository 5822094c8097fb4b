"""A change test for dispensers that start short-delivering after they were cleared
(issue 20, item 3): a one-sided CUSUM over each reading's bias-corrected error.

The cumulative estimate of a dispenser averages its whole history, so a dispenser that
cheats only from some day on moves it slowly. Page's CUSUM accumulates evidence of a
shift instead: S = max(0, S - x - k) for each reading's error x, with the reference k =
the tolerance. The contract measures x against the dispenser's own estimate so far (its
vehicle's bias taken out), so what has always been there, framing colluders' steady lies
among it, is no change. A steady reading adds about -k (S stays near 0); a shift down by
s adds about s - k, so S grows by that per reading and passes the threshold h = H sigma
(sigma: the per-reading noise) after about H sigma / (s - k) readings. A passed
threshold makes the dispenser suspect from then on (the evidence is the change, which a
later average cannot undo). Integers only.
"""

from __future__ import annotations

from math import isqrt


def cusum_step(s_ppm: int, error_ppm: int, reference_ppm: int) -> int:
    """The statistic after one more reading whose bias-corrected error is `error_ppm`."""
    return max(0, s_ppm - error_ppm - reference_ppm)


def cusum_alarm(s_ppm: int, noise_var: int, h_milli: int) -> bool:
    """S past H sigma (H in thousandths), sigma the per-reading noise in ppm."""
    return s_ppm * 1000 > h_milli * isqrt(noise_var)
