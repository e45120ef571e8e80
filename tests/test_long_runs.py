"""Runs of any length in bounded memory: past a million packets the run keeps no per-packet records, checks
deliveries as they come, and judges as a short run does."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import pseudonic
from conftest import DRIVERS_DIR, needs_two_cores
from drivers.misbehaving import HangingE1000
from pseudonic import controller
from pseudonic.cli import cli, main
from pseudonic.errors import ConfigError
from pseudonic.plan import MAX_PACKETS

LONG = MAX_PACKETS + 4321  # past the records kept whole, not a whole number of passes


@needs_two_cores
@pytest.mark.parametrize(("driver", "interval"), [("c", "1us"), ("python", "6us")])
def test_a_run_past_a_million_packets_keeps_summaries_and_is_judged(driver: str, interval: str) -> None:
    r = pseudonic.run(interval, LONG, 60, driver=driver)
    assert r.records["mode"] == "summary"
    assert r.sent == LONG
    assert r.passed, r.verdict
    assert r.received + r.missed == LONG and r.duplicated == r.reordered == r.corrupted == 0
    # the figures are folded from the records as they came, every one of them
    assert r.records["records_lost"] == {"packets": 0, "raises": 0, "handler_runs": 0}
    assert r.send_time_ns["n"] == r.stored
    assert r.interval_deviation_ns["n"] > 0
    # nothing per packet is kept: the memory is the rings', whatever the length
    assert len(r.tx) == 0 and r.records["records_ring"] <= 1 << 20
    assert r.records["driver_maxrss_kib"] > 0


@needs_two_cores
def test_a_driver_that_delivers_twice_fails_a_long_run_too() -> None:
    r = pseudonic.run("20us", 3000, 1500, driver=f"{DRIVERS_DIR / 'misbehaving.py'}:DuplicatingE1000",
                      records="summary")  # fmt: skip
    assert not r.passed
    assert r.duplicated > 0
    assert r.verdict is not None and "delivered more than once" in r.verdict.line()


@needs_two_cores
def test_a_driver_that_corrupts_fails_a_long_run_naming_how() -> None:
    r = pseudonic.run("20us", 500, 1500, driver=f"{DRIVERS_DIR / 'misbehaving.py'}:CorruptingE1000",
                      records="summary")  # fmt: skip
    assert not r.passed
    assert r.corrupted == r.sent - r.missed
    assert "differs from packet 0 from byte 1499" in r.corruption[0]


@needs_two_cores
def test_records_none_counts_and_judges_with_no_figures() -> None:
    r = pseudonic.run("2us", 20_000, 60, driver="c", records="none")
    assert r.records["mode"] == "none" and r.passed
    assert r.send_time_ns["n"] == 0 and r.received + r.missed == 20_000
    # the rate taken, over the sends' span as the record ring still shows it: never past the pace offered
    assert 0 < r.throughput_mpps <= r.received / (19_999 * 2_000) * 1e3


@needs_two_cores
def test_the_cli_shows_a_run_with_no_records_saying_what_was_not_counted() -> None:
    out = CliRunner().invoke(cli, ["run", "--driver", "c", "--interval", "5us", "--count", "5000", "--records",
                                    "none"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "none, rings of" in out.output and "not counted" in out.output and "verdict: PASS" in out.output
    assert "0.000 Gbps" not in out.output


@needs_two_cores
def test_a_schedule_faster_than_the_device_is_sent_behind_it_not_called_hung(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan handed over whole a frame every ns (a replay sped up, say: not refused, as the user's own pace is):
    each deadline is past before the device reaches it, and it sends back to back for as long as that takes
    (here about half a second of 1500 B frames); it is hung only once it stops moving."""
    monkeypatch.setattr(controller, "STILL_TIMEOUT_S", 0.2)
    r = pseudonic.run(plan=pseudonic.Plan.periodic(1, LONG, 1500), driver="c", upper="null")
    assert r.error is None and r.sent == LONG, r.error
    assert r.records["mode"] == "summary" and r.send_time_ns["n"] == r.stored


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"records": "full", "count": LONG}, r"--records full for 1,004,321 packets would keep .* GiB"),
        ({"records": "summary", "faults": ["ce:0.01"]}, r"faults are judged per packet"),
        ({"records": "summary", "transmit": 10}, r"transmit is judged per frame"),
        ({"records": "summary", "keep_frames": True}, r"not kept for a capture"),
        ({"records": "summary", "frames": [bytes(64)]}, r"carry none"),
        ({"records": "some"}, r"records 'some' is unknown: give one of auto, full, summary, none"),
    ],
)
def test_what_a_long_run_cannot_do_is_refused_in_one_line(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        pseudonic.run(**{"interval": "10us", "count": 100, **options})  # type: ignore[arg-type]
    assert "\n" not in str(e.value)


def test_the_cli_refuses_full_records_past_a_million_naming_the_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--count", "2000000", "--records", "full"]) == 2
    err = capsys.readouterr().err
    assert "--records full for 2,000,000 packets would keep 3.4 GiB" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_the_cli_refuses_a_per_packet_output_of_a_long_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--count", "2000000", "--pcap-out-sent", "x.pcap"]) == 2
    assert "--pcap-out-sent keeps every packet" in capsys.readouterr().err


@needs_two_cores
def test_the_cli_runs_a_duration_past_a_million_packets_in_summary() -> None:
    out = CliRunner().invoke(cli, ["run", "--driver", "c", "--interval", "1us", "--duration", "1100ms",
                                    "--size", "60", "-q"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "summary, rings of" in out.output and "peak memory" in out.output


@needs_two_cores
def test_a_driver_hung_in_a_long_run_is_never_said_to_have_seen_a_later_packet() -> None:
    """The device raises on after the driver stopped handling, and a long run's ring of records keeps only the
    newest raises: the one the hung handler run was told about is written over, and its packet is unknown --
    not the packet of whichever later raise took its place."""
    r = pseudonic.run("2us", 40_000, 60, driver=HangingE1000, driver_timeout=1.0, records="none")
    assert r.error is not None and r.error["kind"] == "driver hung" and r.error["handler_run"] == 5
    assert r.interrupts > r.records["records_ring"] + 5, "the raise ring was written over (else nothing is tested)"
    assert r.error["last_packet"] is None


@needs_two_cores
def test_the_cli_writes_a_long_runs_tail_and_says_how_much_of_it(tmp_path: Path) -> None:
    out = CliRunner().invoke(cli, ["run", "--driver", "c", "--interval", "2us", "--count", "20000", "--records",
                                    "none", "--tail", str(tmp_path / "t.csv"), "-q"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "the newest 4096 of 20000 packets" in out.output
    with (tmp_path / "t.csv").open() as f:
        assert sum(1 for _ in f) == 1 + 4096  # the header, then the last ring's worth
    assert (tmp_path / "t.run.csv").read_text().splitlines()[1].endswith(",True,True")


def test_a_tail_file_of_an_unknown_kind_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--tail", "t.json"]) == 2
    assert "--tail t.json: give a file ending in .npz, .csv, .parquet" in capsys.readouterr().err
