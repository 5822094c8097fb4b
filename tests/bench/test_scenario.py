"""Scenario files: every shipped one parses; bad ones are refused naming file and field;
the transport's fault rules behave as scenarios expect."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bench.scenario import Load, ScenarioError, load_scenario
from node.transport import FaultRules

SHIPPED = sorted(Path(__file__).resolve().parents[2].glob("bench/scenarios/*.toml"))


def test_the_seven_required_scenarios_ship_and_parse() -> None:
    names = {load_scenario(p).name for p in SHIPPED}
    assert names >= {
        "n4_baseline", "n4_saturation", "n4_primary_crash", "n4_partition_heal",
        "n7_baseline", "n4_sm2", "n4_wan_delay",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("nodes = 0", "nodes"),
        ("speed = 5", "speed"),
        ("[load]\nmode = 'sideways'", "load.mode"),
        ("[load]\nrate = 5", "load.rate"),
        ("[[faults]]\nat_s = 1\naction = 'explode'", "faults[0].action"),
        ("[[faults]]\nat_s = 1\naction = 'partition'", "faults[0].groups"),
        ("duration_s = 'long'", "duration_s"),
        ("transport = 'carrier-pigeon'", "transport"),
        ("[[faults]]\nat_s = 1\naction = 'crash'\nnode = 'all'", "faults[0].node"),
        ("[[faults]]\nat_s = 1\naction = 'delay'\nnode = '4'", "faults[0].node"),
        ("nodes = [", "(toml)"),
    ],
)
def test_bad_scenarios_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert str(path) in str(err.value) and field in str(err.value)


def test_ramp_steps_through_rates() -> None:
    load = Load(ramp_tps=(100.0, 200.0), ramp_step_s=10)
    assert [load.rate_at(t) for t in (0, 9.9, 10, 25)] == [100, 100, 200, 200]


def test_fault_rules_partition_loss_and_delay() -> None:
    rules = FaultRules(drop_to={2, 3})
    assert rules.drops(2) and not rules.drops(1)
    lossy = FaultRules(loss_pct=5, rng=random.Random(1))
    lost = sum(lossy.drops(1) for _ in range(10_000))
    assert 400 < lost < 600
    delayed = FaultRules(delay_ms=50, jitter_ms=20, rng=random.Random(2))
    waits = [delayed.release_at(100.0) - 100.0 for _ in range(1000)]
    assert min(waits) >= 0.030 and max(waits) <= 0.070
    assert FaultRules().release_at(7.0) == 7.0
