"""The evaluation harness end to end on a one-cell grid: it runs, reports and plots."""

from __future__ import annotations

import json
from pathlib import Path

from bench.cli import run_eval
from bench.surveil_eval import markdown_table, run_grid, summarise, write_reports


def test_one_cell_grid_reports_json_markdown_and_plots(tmp_path: Path) -> None:
    grid = {
        "noise_pct": (2.0,),
        "refuels_per_vehicle": (5,),
        "fraud_pct": (5.0,),
        "collude_fraction": (0.0,),
    }
    rows = summarise(run_grid(grid, seeds=1, jobs=1))
    assert len(rows) == 1 and rows[0]["dispensers"] == 40
    assert rows[0]["sensitivity"] == 1.0 and rows[0]["specificity"] == 1.0
    assert rows[0]["bound_sensitivity"] == 1.0 and rows[0]["of_bound"] == 1.0
    paths = write_reports(rows, {"grid": grid}, tmp_path)
    assert json.loads((tmp_path / "surveil_eval.json").read_text())["rows"] == rows
    assert "| 2 | 5 | 5 | 0.0 % | 0.0 % | 100.0 % | 100.0 % |" in markdown_table(rows)
    assert all(p.stat().st_size > 0 for p in paths) and any(p.suffix == ".png" for p in paths)


def test_cli_refuses_bad_counts(tmp_path: Path) -> None:
    import argparse

    args = argparse.Namespace(quick=True, seeds=-1, jobs=1, out=tmp_path)
    assert run_eval(args) == 2


def test_a_framing_cell_reports_what_knowing_the_colluders_would_reach() -> None:
    """Framers who accuse a fifth of the dispensers: the bound that knows every bias
    still counts their lies, the one that also knows who colludes does not."""
    from bench.surveil_eval import Cell, run_cell

    cell = Cell(2.0, 5, 2.0, 0.3, 1, vehicles=600, dispensers=20, collusion="frame",
                frame_pct=5.0)  # fmt: skip
    row = summarise([run_cell(cell)])[0]
    assert row["collusion"] == "frame" and row["frame_pct"] == 5.0
    assert row["aware_specificity"] == 1.0  # honest dispensers, honest readings only
    assert row["bound_specificity"] < 1.0  # 30 % framing by 5 % moves a target by 1.5 %
    assert "30.0 % frame 5 %" in markdown_table([row])


def test_the_wide_grid_spans_the_issue_axes_and_renders() -> None:
    from bench.surveil_eval import Cell, run_cell
    from bench.surveil_wide import wide_cells, wide_table

    cells = wide_cells(1)
    assert len(cells) == 64
    assert {c.vehicles * 10 // c.dispensers for c in cells} == {100, 200, 500, 1_000}
    assert {c.home_dispensers for c in cells} == {3, 6} and {c.bias_sd_pct for c in cells} == {
        1.0,
        2.0,
    }
    small = Cell(2.0, 5, 2.0, 0.0, 1, vehicles=400, dispensers=20, home_dispensers=3,
                 away_fraction=0.1, honest_offset_pct=0.3)  # fmt: skip
    row = summarise([run_cell(small)])[0]
    assert "| 400 / 20 | 100 | 3 | 1 % | 2 % | 0.0 % |" in wide_table([row])


def test_honest_dispensers_off_within_the_tolerance_and_refuels_away() -> None:
    from oracle.sim.fleet import Fleet, FleetConfig

    fleet = Fleet(FleetConfig(vehicles=200, dispensers=30, seed=3, honest_offset_pct=0.3,
                              dispensers_per_vehicle=3, away_fraction=0.2))  # fmt: skip
    offsets = [d.offset for d in fleet.dispensers if not d.fraudulent]
    assert all(-0.003 <= x <= 0.003 for x in offsets) and len(set(offsets)) == len(offsets)
    homes = {
        v.vehicle_id: {fleet.dispensers[i].dispenser_id for i in v.home} for v in fleet.vehicles
    }
    away = sum(
        r.dispenser_id not in homes[r.vehicle_id] for _, r in (fleet.refuel() for _ in range(2_000))
    )
    assert 0.1 < away / 2_000 < 0.25  # about a fifth, less those that land at a home by chance
