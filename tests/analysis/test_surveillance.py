"""The surveillance statistics: hand-computed cases, decisions, one vote per vehicle,
determinism (ledger path and evaluation path agree), and colluders found in a seeded fleet."""

from __future__ import annotations

from analysis.build import build_registry
from analysis.state import ContractState, DirectState
from analysis.surveillance import (
    SUSPECT,
    DispenserSurveillance,
    SurveillanceRules,
    dispenser_bounds,
    relative_error_ppm,
    vote_weight_milli,
)
from ledger.readings import RefuelReading
from oracle.sim.fleet import Fleet, FleetConfig

T0 = 1_800_000_000_000


def refuel(vehicle: str, dispenser: str, claimed_ml: int, measured_ml: int) -> RefuelReading:
    return RefuelReading(vehicle, dispenser, "s-1", claimed_ml, measured_ml, 10, 200, 1, T0)


def test_relative_error_in_ppm_floors() -> None:
    assert relative_error_ppm(refuel("v", "d", 40_000, 39_800)) == -5_000
    assert relative_error_ppm(refuel("v", "d", 3, 1)) == -666_667  # floor of -666,666.67
    assert relative_error_ppm(refuel("v", "d", 20_000, 20_100)) == 5_000


def test_bounds_by_hand() -> None:
    # votes -1 %, -2 %, -3 %, equal weights: mean -2 %, sample sd 1 %, SE = 1 % / sqrt 3
    record = {"k": 3, "w": 3, "sum_ppm": -60_000, "sum_sq": 10_000**2 + 20_000**2 + 30_000**2}
    assert dispenser_bounds(record, 1000) == (-20_000, -25_773, -14_227)
    assert dispenser_bounds(record, 2500) == (-20_000, -34_432, -5_568)
    same = {k: v * 1000 if k != "k" else v for k, v in record.items()}  # weights' scale: none
    assert dispenser_bounds(same, 1000) == (-20_000, -25_773, -14_227)
    single = {"k": 1, "w": 1000, "sum_ppm": -7000, "sum_sq": 49_000}
    assert dispenser_bounds(single, 2500) == (-7, -1_000_000, 1_000_000)
    # -1 % weighing 3, -3 % weighing 1: mean -1.5 %; weighted SE^2 =
    # (3 * 0.5^2 + 1 * 1.5^2) / ((k - 1) * W) = 3 / 4 (%^2): SE = 0.866 % (ppm: 8,660.25)
    weighted = {"k": 2, "w": 4, "sum_ppm": 3 * -10_000 + -30_000,
                "sum_sq": 3 * 10_000**2 + 30_000**2}  # fmt: skip
    assert dispenser_bounds(weighted, 1000) == (-15_000, -23_660, -6_340)  # SE floored: 8,660


def test_a_vote_weighs_by_how_well_its_vehicle_is_known() -> None:
    prior, noise = 10_000**2, 50_000**2  # bias sd 1 %, noise 5 %
    one_here_none_elsewhere = vote_weight_milli(1, 0, prior, noise)
    assert one_here_none_elsewhere == 1000 * noise // (noise + prior)  # 1 / (1 + p/v)
    assert vote_weight_milli(3, 0, prior, noise) > one_here_none_elsewhere
    assert vote_weight_milli(1, 20, prior, noise) > one_here_none_elsewhere
    assert vote_weight_milli(1, 10**6, prior, noise) == 999  # bias known: one reading's worth
    assert vote_weight_milli(2, 10**6, prior, noise) == 1999


def observe_all(
    contract: DispenserSurveillance, state: DirectState, readings: list[RefuelReading]
) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    events = []
    for r in readings:
        events += list(contract.observe(state, r).events)
    return events


def test_a_short_dispenser_is_flagged_once_and_an_honest_one_cleared() -> None:
    rules = SurveillanceRules(min_vehicles=5, bias_sd_ppm=1)  # no bias to learn here
    contract, state = DispenserSurveillance(rules), DirectState({})
    readings = []
    for v in range(8):
        wobble = (v % 3 - 1) * 40  # +-0.1 % of 40 L
        readings.append(refuel(f"v{v}", "short", 40_000, 38_800 + wobble))  # -3 %
        readings.append(refuel(f"v{v}", "fair", 40_000, 40_000 + wobble))
    events = observe_all(contract, state, readings)
    flagged = [e for name, e in events if name == "dispenser_flagged"]
    cleared = [e for name, e in events if name == "dispenser_cleared"]
    assert [e["dispenser_id"] for e in flagged] == ["short"]
    assert [e["dispenser_id"] for e in cleared] == ["fair"]
    short = state.get("disp/short")
    assert short["status"] == SUSPECT and short["k"] == 8 and short["n"] == 8
    assert -31_000 < short["estimate"] < -29_000
    assert flagged[0]["upper_ppm"] < -5_000 and flagged[0]["vehicles"] >= 5


def test_a_vehicle_has_one_vote_per_dispenser_however_often_it_refuels() -> None:
    contract, state = DispenserSurveillance(), DirectState({})
    observe_all(contract, state, [refuel("loud", "d", 40_000, 20_000)] * 100)
    record = state.get("disp/d")
    rules = SurveillanceRules()
    assert (record["n"], record["k"]) == (100, 1)
    assert 0 < record["w"] <= rules.max_vote_weight_milli  # one vote, its weight bounded
    assert record["sum_ppm"] == -rules.vote_clip_ppm * record["w"]  # and its vote clipped


def test_ledger_path_and_evaluation_path_agree_and_are_deterministic() -> None:
    config = FleetConfig(
        vehicles=80, dispensers=4, seed=3, fraud_fraction=0.25, fraud_shortfall_pct=3
    )
    fleet = Fleet(config)
    readings = [fleet.refuel()[1] for _ in range(800)]
    contract = DispenserSurveillance(SurveillanceRules(min_vehicles=10))
    direct = DirectState({})
    observe_all(contract, direct, readings)
    committed: dict[str, object] = {}
    for block in range(0, len(readings), 37):  # blocks of 37, copy-on-write, commit per block
        view = ContractState(committed)
        for r in readings[block : block + 37]:
            contract.observe(view, r)
        committed.update(view.writes)
    assert committed == direct.committed
    again = DirectState({})
    observe_all(contract, again, readings)
    assert again.committed == direct.committed


def test_colluding_vehicles_are_identified_in_a_seeded_fleet() -> None:
    config = FleetConfig(vehicles=1000, dispensers=20, seed=1, fraud_fraction=0.2,
                         fraud_shortfall_pct=5.0, noise_pct=1.0, collude_fraction=0.1,
                         collusion="cover+frame")  # fmt: skip
    fleet, contract, state = Fleet(config), DispenserSurveillance(), DirectState({})
    events = observe_all(contract, state, [fleet.refuel()[1] for _ in range(20_000)])
    suspected = {e["vehicle_id"] for name, e in events if name == "vehicle_suspected"}
    colluders = {v.vehicle_id for v in fleet.vehicles if v.colluding}
    print(f"seed {config.seed}: {len(suspected & colluders)}/{len(colluders)} colluders found, "
          f"{len(suspected - colluders)} honest vehicles suspected")  # fmt: skip
    assert len(suspected & colluders) >= len(colluders) // 2
    assert len(suspected - colluders) <= 9  # at most 1 % of the 900 honest vehicles
    fraud = {d.dispenser_id for d in fleet.dispensers if d.fraudulent}
    flagged = {d for d in fraud | {x.dispenser_id for x in fleet.dispensers}
               if state.get(f"disp/{d}")["status"] == SUSPECT}  # fmt: skip
    assert flagged == fraud  # framing did not stick once the colluders stopped voting


def test_rules_from_genesis_refuse_bad_settings() -> None:
    members = (b"\x01" * 32, b"\x02" * 32)
    for bad in ({"tolerance": 5}, {"z_milli": -1}, {"min_vehicles": 1}, {"z_milli": True}):
        try:
            build_registry("ed25519", {"surveillance": bad}, members)
        except ValueError as exc:
            assert "surveillance" in str(exc)
        else:
            raise AssertionError(f"accepted {bad}")


def test_station_coordinates_are_checked_and_kept_out_of_the_decisions() -> None:
    from analysis.surveillance import SurveillanceRules

    rules = SurveillanceRules.from_config(
        {"min_vehicles": 10, "stations": {"s-1": [39_084_000, 117_200_000]}}
    )
    assert rules.stations == (("s-1", 39_084_000, 117_200_000),) and rules.min_vehicles == 10
    for bad in ({"s-1": [91_000_000, 0]}, {"s-1": [1.5, 2]}, {"s-1": [1]}, ["s-1"]):
        try:
            SurveillanceRules.from_config({"stations": bad})
        except ValueError as exc:
            assert "stations" in str(exc)
        else:
            raise AssertionError(f"accepted {bad}")


def test_a_well_known_vehicle_weighs_no_more_than_the_cap() -> None:
    rules = SurveillanceRules(max_vote_weight_milli=1_500)
    contract, state = DispenserSurveillance(rules), DirectState({})
    readings = [refuel("known", d, 40_000, 39_600) for d in ("a", "b", "c", "d")] * 25
    observe_all(contract, state, readings)
    assert {state.get(f"disp/{d}")["w"] for d in "abcd"} == {1_500}


def test_the_change_test_accumulates_a_shift_and_forgets_honest_scatter() -> None:
    from analysis.change import cusum_alarm, cusum_step

    s = 0
    for error in (3_000, -2_000, 4_000, -1_000):  # honest scatter about 0, tolerance 0.5 %
        s = cusum_step(s, error, 5_000)
    assert s == 0
    for _ in range(10):  # 2 % short: 1.5 % of evidence a reading
        s = cusum_step(s, -20_000, 5_000)
    assert s == 150_000
    assert cusum_alarm(s, 10_000**2, 14_000) and not cusum_alarm(s, 10_000**2, 15_000)


def test_a_dispenser_that_starts_cheating_after_it_was_cleared_is_flagged() -> None:
    rules = SurveillanceRules(min_vehicles=5, bias_sd_ppm=1_000, change_h_milli=20_000)
    contract, state = DispenserSurveillance(rules), DirectState({})
    honest = [refuel(f"v{v}", "d", 40_000, 40_000 + (v % 5 - 2) * 200) for v in range(40)]
    events = observe_all(contract, state, honest)
    assert state.get("disp/d")["status"] == "cleared"
    assert "dispenser_flagged" not in [name for name, _ in events]
    cheating = [refuel(f"v{v}", "d", 40_000, 39_200 + (v % 5 - 2) * 200) for v in range(40)]
    events = observe_all(contract, state, cheating)  # 2 % short from now on
    record = state.get("disp/d")
    assert record["status"] == SUSPECT and 40 < record["changed_at"] < 80
    (flagged,) = [e for name, e in events if name == "dispenser_flagged"]
    assert flagged["test"] == "change" and flagged["readings"] == record["changed_at"]
    assert flagged["upper_ppm"] > -5_000  # then, the history's average alone did not flag it


def test_framers_lose_their_votes_quietly_and_honest_vehicles_seldom_do() -> None:
    """20 % of vehicles accuse a fifth of the dispensers by 5 % at 2 % noise: past the lax
    level their votes are withdrawn with no event; the public suspicion keeps its strict
    level; a doubted vehicle has no vote anywhere, and each dispenser's count of votes
    matches the vehicles that still vote there."""
    config = FleetConfig(vehicles=1000, dispensers=50, seed=3, fraud_fraction=0.1,
                         noise_pct=2.0, bias_sd_pct=2.0, collude_fraction=0.2,
                         collusion="frame", frame_pct=5.0)  # fmt: skip
    fleet, contract, state = Fleet(config), DispenserSurveillance(), DirectState({})
    events = observe_all(contract, state, [fleet.refuel()[1] for _ in range(10_000)])
    records = {
        v.vehicle_id: (v.colluding, state.get(f"veh/{v.vehicle_id}")) for v in fleet.vehicles
    }
    doubted = {i for i, (_, r) in records.items() if r and r.get("doubt")}
    framers = {i for i, (c, _) in records.items() if c}
    print(f"seed {config.seed}: {len(doubted & framers)}/{len(framers)} framers doubted, "
          f"{len(doubted - framers)} honest")  # fmt: skip
    assert len(doubted & framers) >= 3 * len(doubted - framers) > 0
    assert len(doubted - framers) <= 20  # 2.5 % of the 800 honest vehicles at most
    assert all(not records[i][1]["m"] for i in doubted)
    suspected = {e["vehicle_id"] for name, e in events if name == "vehicle_suspected"}
    assert not suspected - framers  # nobody honest accused
    for d in fleet.dispensers:
        voters = sum(d.dispenser_id in r["m"] for _, r in records.values() if r)
        assert state.get(f"disp/{d.dispenser_id}")["k"] == voters


def test_an_echoed_claim_does_not_vote_and_a_vehicle_that_keeps_echoing_is_suspected() -> None:
    rules = SurveillanceRules(min_vehicles=2)
    contract, state = DispenserSurveillance(rules), DirectState({})
    observe_all(contract, state, [refuel("honest", "d", 40_000, 40_800)])  # +2 %: a reading
    assert state.get("disp/d")["k"] == 1
    assert observe_all(contract, state, [refuel("echo", "d", 40_000, 40_000)]) == []
    assert (state.get("disp/d")["n"], state.get("disp/d")["k"]) == (2, 1)  # counted, no vote
    assert state.get("veh/echo")["e"] == {"d": 1} and not state.get("veh/echo")["suspect"]
    # 100 ppm of 40 L is 4 ml: 40,004 echoes the claim, 40,005 does not
    observe_all(contract, state, [refuel("echo", "e", 40_000, 40_004)])
    observe_all(contract, state, [refuel("near", "d", 40_000, 40_005)])
    assert state.get("veh/echo")["e"] == {"d": 1, "e": 1} and "e" not in state.get("veh/near")
    events = []
    for k in range(8):  # an honest sensor (noise 2 % or more) does that once in 250
        events += observe_all(contract, state, [refuel("echo", f"x{k}", 30_000, 30_000)])
    suspected = [e for name, e in events if name == "vehicle_suspected"]
    assert [(e["vehicle_id"], e["test"]) for e in suspected] == [("echo", "echo")]
    assert state.get("veh/echo")["suspect"] and suspected[0]["echoes"] <= 5


def test_with_echo_off_a_reading_equal_to_the_claim_votes() -> None:
    contract, state = DispenserSurveillance(SurveillanceRules(echo_ppm=0)), DirectState({})
    observe_all(contract, state, [refuel("v", "d", 40_000, 40_000)] * 3)
    assert state.get("disp/d")["k"] == 1 and "e" not in state.get("veh/v")


def test_covering_colluders_that_echo_the_claim_lose_their_cover() -> None:
    """Colluders who report the claimed volume at their dispenser: their readings there
    do not vote, so the short dispensers are found as if they did not collude."""
    config = FleetConfig(vehicles=1000, dispensers=20, seed=2, fraud_fraction=0.2,
                         fraud_shortfall_pct=3.0, noise_pct=3.0, collude_fraction=0.3,
                         collusion="cover")  # fmt: skip
    fleet, contract, state = Fleet(config), DispenserSurveillance(), DirectState({})
    echoes_off = DispenserSurveillance(SurveillanceRules(echo_ppm=0))
    off_state = DirectState({})
    for _ in range(10_000):
        reading = fleet.refuel()[1]
        contract.observe(state, reading)
        echoes_off.observe(off_state, reading)
    fraud = {d.dispenser_id for d in fleet.dispensers if d.fraudulent}

    def estimates(s: DirectState) -> list[int]:
        return [s.get(f"disp/{d}")["estimate"] for d in sorted(fraud)]

    print(f"seed {config.seed}: estimates {estimates(state)} (echo test off: "
          f"{estimates(off_state)})")  # fmt: skip
    assert all(-36_000 < e < -24_000 for e in estimates(state))  # the 3 % shortfall
    assert all(e > -27_000 for e in estimates(off_state))  # diluted by the cover
