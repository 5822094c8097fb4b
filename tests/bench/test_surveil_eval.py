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
