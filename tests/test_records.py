"""A run's per-packet records to a file (pseudonic.records): .npz, .csv, .parquet.

Five tables -- packets, raises, handler_runs, deliveries, run -- with the
columns the module docstring documents, in CLOCK_MONOTONIC ns; a .npz file
holds them all, a .csv or .parquet file one each, side by side.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import needs_two_cores
from pseudonic import records
from pseudonic.errors import ConfigError
from pseudonic.frames import FrameSet
from pseudonic.layout import (
    IRQ_RECORD,
    RAISE_RECORD,
    RXD_ERR_CE,
    SLOT_SPURIOUS,
    TX_DROPPED,
    TX_RAISED,
    TX_RECORD,
    TX_SPURIOUS,
    TX_STORED,
)
from pseudonic.plan import Plan
from pseudonic.records import TABLES, tables, write_records
from pseudonic.result import RunResult
from pseudonic.schedule import from_offsets

COLUMNS = {
    "packets": ["index", "due_ns", "deadline_ns", "start_ns", "kept_ns", "end_ns", "spin_gap_ns", "slot", "flags",
                "frame", "length", "errors", "stored", "dropped", "raised", "spurious", "delivered", "deliveries"],
    "raises": ["index", "raised_ns", "packet", "icr"],
    "handler_runs": ["index", "wait_ns", "entry_ns", "exit_ns", "doorbell", "spin_gap_ns", "delivered"],
    "deliveries": ["index", "packet", "delivered_ns"],
    "run": ["t0_ns", "clock_offset_ns", "verified", "tail"],
}  # fmt: skip
T0 = 5_000_000_000
NO_SLOT = 0xFFFFFFFF


def made_result(with_plan: bool = True) -> RunResult:
    """Five entries: stored and raised, stored, stored with an error bit, spurious, dropped; two raises,
    two handler runs; deliveries: packet 0, packet 1 twice, one unmatched."""
    frames = FrameSet.of([bytes(100), bytes(200)], stamped=False)
    slots = from_offsets([0, 1_000, 2_000, 3_000, 4_000], frames=[0, 1, 0, 1, 0], errors=[0, 0, RXD_ERR_CE, 0, 0])
    slots["flags"][3] |= SLOT_SPURIOUS
    plan = Plan.make(slots, frames, {"kind": "test"})
    tx = np.zeros(5, TX_RECORD)
    tx["start_ns"] = T0 + np.array([10, 1_020, 2_030, 3_040, 4_050])
    tx["end_ns"] = tx["start_ns"] + 100
    tx["due_ns"] = T0 + np.array([0, 1_000, 2_500, 3_500, 4_500])  # --late shift moved the schedule at packet 2
    tx["spin_gap_ns"] = [1, 2, 3, 4, 5]
    tx["slot"] = [0, 1, 2, NO_SLOT, NO_SLOT]
    tx["flags"] = [TX_STORED | TX_RAISED, TX_STORED, TX_STORED, TX_SPURIOUS | TX_RAISED, TX_DROPPED]
    raises = np.zeros(2, RAISE_RECORD)
    raises["raised_ns"] = [T0 + 110, T0 + 3_140]
    raises["packet"] = [0, 3]
    raises["icr"] = [0x80, 0x80]
    irqs = np.zeros(2, IRQ_RECORD)
    irqs["wait_ns"] = [T0 + 100, T0 + 1_000]
    irqs["entry_ns"] = [T0 + 500, T0 + 3_500]
    irqs["exit_ns"] = [T0 + 900, T0 + 3_600]
    irqs["doorbell"] = [1, 2]
    irqs["spin_gap_ns"] = [7, 8]
    irqs["delivered"] = [3, 4]
    zero: dict[str, Any] = {}
    return RunResult(
        config={}, sent=4, stored=3, received=2, missed=1, lost=2, duplicated=1, reordered=0, corrupted=1,
        rx_errors=None, success_rate=0.5, throughput_gbps=0.0, interrupts=2, handler_runs=2, send_time_ns=zero,
        interval_deviation_ns=zero, device_interval_deviation_ns=zero, irq_latency_ns=zero, stalls=zero,
        verified=True, due_ns=slots["due_ns"].astype(np.int64), tx=tx, raises=raises, irqs=irqs,
        delivered_seq=np.array([0, 1, 1, -1], np.int64), t0_ns=T0, plan=plan if with_plan else None,
        clock_offset_ns=1_700_000_000_000_000_000,
    )  # fmt: skip


EXPECTED: dict[str, dict[str, list[Any]]] = {
    "packets": {
        "index": [0, 1, 2, 3, 4],
        "due_ns": [0, 1_000, 2_000, 3_000, 4_000],
        "deadline_ns": [T0, T0 + 1_000, T0 + 2_000, T0 + 3_000, T0 + 4_000],
        "start_ns": [T0 + 10, T0 + 1_020, T0 + 2_030, T0 + 3_040, T0 + 4_050],
        "kept_ns": [T0, T0 + 1_000, T0 + 2_500, T0 + 3_500, T0 + 4_500],
        "end_ns": [T0 + 110, T0 + 1_120, T0 + 2_130, T0 + 3_140, T0 + 4_150],
        "spin_gap_ns": [1, 2, 3, 4, 5],
        "slot": [0, 1, 2, -1, -1],
        "flags": [5, 1, 1, 12, 2],
        "frame": [0, 1, 0, 1, 0],
        "length": [100, 200, 100, 0, 100],
        "errors": [0, 0, RXD_ERR_CE, 0, 0],
        "stored": [True, True, True, False, False],
        "dropped": [False, False, False, False, True],
        "raised": [True, False, False, True, False],
        "spurious": [False, False, False, True, False],
        "delivered": [True, True, False, False, False],
        "deliveries": [1, 2, 0, 0, 0],
    },
    "raises": {"index": [0, 1], "raised_ns": [T0 + 110, T0 + 3_140], "packet": [0, 3], "icr": [0x80, 0x80]},
    "handler_runs": {
        "index": [0, 1],
        "wait_ns": [T0 + 100, T0 + 1_000],
        "entry_ns": [T0 + 500, T0 + 3_500],
        "exit_ns": [T0 + 900, T0 + 3_600],
        "doorbell": [1, 2],
        "spin_gap_ns": [7, 8],
        "delivered": [3, 4],
    },
    "deliveries": {"index": [0, 1, 2, 3], "packet": [0, 1, 1, -1], "delivered_ns": [-1, -1, -1, -1]},
    "run": {"t0_ns": [T0], "clock_offset_ns": [1_700_000_000_000_000_000], "verified": [True], "tail": [False]},
}


def test_the_tables_and_their_columns_are_the_documented_ones() -> None:
    got = tables(made_result())
    assert list(got) == list(TABLES) == list(COLUMNS)
    doc = records.__doc__ or ""
    for name, columns in COLUMNS.items():
        assert list(got[name].dtype.names or ()) == columns
        assert f"``{name}``" in doc
        for column in columns:
            assert f"``{column}``" in doc, f"{name}.{column} is not documented"


def test_npz_holds_every_table_with_its_values(tmp_path: Path) -> None:
    assert write_records(tmp_path / "r.npz", made_result()) == [tmp_path / "r.npz"]
    with np.load(tmp_path / "r.npz") as npz:  # no pickles: plain structured arrays
        assert sorted(npz.files) == sorted(TABLES)
        for name, columns in EXPECTED.items():
            for column, values in columns.items():
                assert npz[name][column].tolist() == values, f"{name}.{column}"
        assert npz["packets"]["start_ns"].dtype == np.int64 and npz["packets"]["stored"].dtype == np.bool_


def test_an_npz_path_is_kept_as_given(tmp_path: Path) -> None:
    write_records(tmp_path / "R.NPZ", made_result())
    assert [p.name for p in tmp_path.iterdir()] == ["R.NPZ"]


def test_delivery_times_when_the_run_kept_them(tmp_path: Path) -> None:
    result = made_result()
    result.delivered_ns = np.array([T0 + 600, T0 + 700, T0 + 800, T0 + 3_550])  # type: ignore[attr-defined]
    assert tables(result)["deliveries"]["delivered_ns"].tolist() == [T0 + 600, T0 + 700, T0 + 800, T0 + 3_550]


def test_without_a_plan_the_frame_columns_say_unknown() -> None:
    packets = tables(made_result(with_plan=False))["packets"]
    assert packets["frame"].tolist() == packets["length"].tolist() == packets["errors"].tolist() == [-1] * 5
    with_plan = tables(made_result(with_plan=False), plan=made_result().plan)["packets"]
    assert with_plan["length"].tolist() == EXPECTED["packets"]["length"]


def test_csv_is_one_table_per_file_side_by_side(tmp_path: Path) -> None:
    paths = write_records(tmp_path / "run.csv", made_result())
    assert [p.name for p in paths] == [
        "run.csv", "run.raises.csv", "run.handler_runs.csv", "run.deliveries.csv", "run.run.csv",
    ]  # fmt: skip
    for name, path in zip(TABLES, paths, strict=True):
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
        assert rows[0] == COLUMNS[name]
        columns = list(zip(*rows[1:], strict=True))
        assert [list(c) for c in columns] == [[str(v) for v in EXPECTED[name][col]] for col in COLUMNS[name]]


def test_parquet_is_one_table_per_file(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is optional")
    paths = write_records(tmp_path / "run.parquet", made_result())
    assert [p.name for p in paths][:2] == ["run.parquet", "run.raises.parquet"]
    for name, path in zip(TABLES, paths, strict=True):
        assert pq.read_table(path).to_pydict() == EXPECTED[name]


def test_parquet_without_pyarrow_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now fails, as where it is not installed
    with pytest.raises(ConfigError) as exc:
        write_records(tmp_path / "run.parquet", made_result())
    assert str(exc.value) == (
        f"records file {tmp_path}/run.parquet: writing .parquet needs pyarrow (pip install pyarrow); "
        "or give a .npz file"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["run.json", "run"])
def test_an_unknown_extension_lists_the_known_ones(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match=r"unknown extension .*: give \.npz, \.csv, \.parquet$"):
        write_records(tmp_path / name, made_result())


def test_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"/nowhere/r\.npz cannot be written: No such file or directory$"):
        write_records(tmp_path / "nowhere" / "r.npz", made_result())


@needs_two_cores
def test_a_run_writes_its_records(tmp_path: Path) -> None:
    import pseudonic

    result = pseudonic.run(interval="20us", count=50, size=200, wait_for_cores=True)
    write_records(tmp_path / "r.npz", result)
    with np.load(tmp_path / "r.npz") as npz:
        packets, deliveries = npz["packets"], npz["deliveries"]
        assert packets["index"].tolist() == list(range(50)) and packets["length"].tolist() == [200] * 50
        assert packets["stored"].all() and packets["delivered"].all() and (packets["deliveries"] == 1).all()
        assert deliveries["packet"].tolist() == list(range(50))
        assert (packets["start_ns"] >= packets["deadline_ns"]).all()
        assert len(npz["handler_runs"]) == result.handler_runs and len(npz["raises"]) == result.interrupts
        assert npz["run"]["t0_ns"].tolist() == [result.t0_ns]


@needs_two_cores
def test_a_long_run_writes_the_newest_records_its_rings_held_in_order(tmp_path: Path) -> None:
    """--records none keeps rings of 4096: 20 000 packets wrap them; the tail is the last ring's worth, oldest
    first, each row counted from the run's start and on the plan's deadline -- a ring read from the wrong place
    shows as a send before its deadline or out of order."""
    import pseudonic

    result = pseudonic.run(interval="2us", count=20_000, size=60, driver="c", records="none", wait_for_cores=True)
    cap = result.records["records_ring"]
    write_records(tmp_path / "t.npz", result)
    with np.load(tmp_path / "t.npz") as npz:
        packets, raises, runs = npz["packets"], npz["raises"], npz["handler_runs"]
        assert packets["index"].tolist() == list(range(20_000 - cap, 20_000))
        assert (packets["start_ns"] >= packets["deadline_ns"]).all()
        assert (np.diff(packets["start_ns"]) >= 0).all()
        assert packets["due_ns"].tolist() == [2_000 * i for i in range(20_000 - cap, 20_000)]
        assert (packets["length"] == 60).all() and (packets["deliveries"] == -1).all()
        assert raises["index"][-1] == result.interrupts - 1 and len(raises) == min(cap, result.interrupts)
        assert (np.diff(raises["raised_ns"]) >= 0).all() and raises["packet"][-1] <= 19_999
        assert runs["index"][-1] == result.handler_runs - 1 and (np.diff(runs["entry_ns"]) >= 0).all()
        assert npz["run"]["tail"].tolist() == [True] and len(npz["deliveries"]) == 0
