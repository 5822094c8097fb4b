"""The remote error model (§6.1.3): exact on noise-free data, deterministic across
processes, and on a simulated area it reports the bad meter and no good one."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import asdict

import pytest

from analysis.error_model import Accumulator, estimate, judge, verdict
from oracle.areas import Area, AreaConfig

LIMIT = 20_000


def noise_free(errors_ppm: list[int], periods: int, seed: int) -> Accumulator:
    """Readings that satisfy the model exactly: S = Σ true + a + c (Σ M)² / Q_SCALE,
    with every M a multiple of the error's denominator so that M(1 - e) is an integer."""
    from analysis.error_model import Q_SCALE

    rng, acc = random.Random(seed), Accumulator(len(errors_ppm))
    for _ in range(periods):
        users = [rng.randrange(100, 2_000) * 1_000_000 for _ in errors_ppm]
        true = sum(m - m * e // 1_000_000 for m, e in zip(users, errors_ppm, strict=True))
        total = sum(users)
        summary = true + 5_000 + 3 * (total * total // Q_SCALE)
        acc.add(users, summary)
    return acc


def test_noise_free_readings_give_back_the_errors_exactly() -> None:
    errors = [0, 12_000, -7_500, 50_000, -300, 1, 0, 20_000]
    acc = noise_free(errors, 200, seed=3)
    found = estimate(acc, [e == 0 for e in errors])  # anchored on the meters with no error
    assert found is not None
    assert all(abs(f - e) <= 1 for f, e in zip(found.error_ppm, errors, strict=True))
    assert found.fixed_loss_wh == 5_000 and found.residual_ppm == 0


def test_too_few_periods_or_proportional_meters_give_no_estimate() -> None:
    assert estimate(noise_free([0, 0, 0], 5, seed=1)) is None  # 5 periods, 5 unknowns
    acc = Accumulator(2)
    for t in range(50):
        acc.add([100 + t, 2 * (100 + t)], 3 * (100 + t) + 7)  # meter 2 reads twice meter 1
    assert estimate(acc, [False, False]) is None  # only e1 + 2 e2 is determined
    anchored = estimate(acc)  # the anchor e1 + e2 = 0 determines both: no error at all
    assert anchored is not None and anchored.error_ppm == (0, 0) and anchored.fixed_loss_wh == 7


def test_a_seeded_area_shows_its_bad_meter_and_no_good_one() -> None:
    cfg = AreaConfig(meters=30, days=20, seed=4, bad=1, bad_error_ppm=60_000)
    area, acc = Area(cfg), Accumulator(cfg.meters)
    for users, summary in area.periods():
        acc.add(users, summary)
    judged = judge(acc, [LIMIT] * cfg.meters)
    assert judged is not None
    _, verdicts = judged
    bad = area.kinds.index("bad")
    assert verdicts[bad] == "out_of_tolerance", f"seed {cfg.seed}"
    assert [i for i, v in enumerate(verdicts) if v == "out_of_tolerance"] == [bad]


def test_the_estimate_is_the_same_in_another_process() -> None:
    """No float, no hash order: a fresh interpreter (another PYTHONHASHSEED) computes the
    same integers from the same seeded area."""
    script = (
        "import json, sys\n"
        "from dataclasses import asdict\n"
        "from analysis.error_model import Accumulator, estimate\n"
        "from oracle.areas import Area, AreaConfig\n"
        "cfg = AreaConfig(meters=20, days=10, seed=9)\n"
        "area, acc = Area(cfg), Accumulator(cfg.meters)\n"
        "for u, s in area.periods(): acc.add(u, s)\n"
        "print(json.dumps(asdict(estimate(acc))))\n"
    )
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True, timeout=120, env={"PYTHONHASHSEED": str(seed),
                                                         "PYTHONPATH": "."}).stdout
            for seed in (1, 2)]  # fmt: skip
    cfg = AreaConfig(meters=20, days=10, seed=9)
    area, acc = Area(cfg), Accumulator(cfg.meters)
    for users, summary in area.periods():
        acc.add(users, summary)
    here = estimate(acc)
    assert here is not None
    assert json.loads(runs[0]) == json.loads(runs[1]) == json.loads(json.dumps(asdict(here)))


@pytest.mark.parametrize(("error", "stderr", "expected"), [
    (50_000, 10_000, "out_of_tolerance"),  # 50,000 - 23,260 > 20,000
    (40_000, 10_000, "undecided"),
    (-50_000, 10_000, "out_of_tolerance"),
    (1_000, 5_000, "within"),  # 1,000 + 11,630 <= 20,000
    (72_000, 21_000, "undecided"),  # an imprecise meter: 72,000 - 54,096 < 20,000
    (76_000, 21_000, "out_of_tolerance"),  # (2.326 would have flagged it at 69,000)
    (10_000, 5_000, "undecided"),
])  # fmt: skip
def test_verdicts_at_the_confidence_bound(error: int, stderr: int, expected: str) -> None:
    assert verdict(error, stderr, LIMIT) == expected


def test_an_area_config_refuses_what_cannot_be() -> None:
    with pytest.raises(ValueError, match="period_s"):
        AreaConfig(period_s=900)
    with pytest.raises(ValueError, match="faulty"):
        AreaConfig(meters=2, bad=3)
