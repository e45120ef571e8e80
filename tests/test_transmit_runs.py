"""The transmit ring end to end: the reference drivers send every frame handed once, in order, intact, and each
classic transmit bug is caught and named; rings the driver places itself, and ones it programs wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

import pseudonic
from conftest import needs_two_cores
from drivers.own_ring import NoRingProgrammed, OwnRingE1000, RdlenNotMultiple, ResetsFirst, RingOutsideDma
from drivers.tx_bugs import (
    BufferOutside,
    FillsEveryDescriptor,
    FlipsAByte,
    LastWithoutEop,
    NeverEop,
    NoIfcs,
    NoRs,
    ReclaimsWithoutDd,
    TdlenNotMultiple,
    TransmitterOff,
)
from drivers.window_e1000 import WindowE1000
from pseudonic.capture import read_capture
from pseudonic.conformance import check_driver
from pseudonic.drivers.e1000 import TX_RING
from pseudonic.errors import ConfigError, DriverLoadError

#: enough frames to wrap the reference drivers' transmit ring three times
WRAPS = 3 * TX_RING + 7
#: a pace slow enough that any driver fills its ring: 1000 B frames take 82 µs each on the wire
SLOW = "100Mbps"


def codes(r: pseudonic.RunResult) -> set[str]:
    assert r.verdict is not None
    return {f.code for f in r.verdict.reasons}


@needs_two_cores
@pytest.mark.parametrize("driver", ["python", "c"])
def test_the_reference_drivers_send_every_frame_once_in_order_intact_around_the_ring(driver: str) -> None:
    r = pseudonic.run(driver=driver, count=100, interval="50us", transmit=WRAPS, wait_for_cores=True, sanitize=True)
    assert r.transmit is not None and r.verdict is not None and r.verdict.passed, r.verdict.line()
    t = r.transmit
    assert (t["handed"], t["taken"], t["intact"]) == (WRAPS, WRAPS, WRAPS)
    assert t["lost"] == t["duplicated"] == t["reordered"] == t["corrupted"] == 0
    assert r.register_window["tx_ring_count"] == TX_RING and r.received == 100
    assert t["octets"] == WRAPS * 1500 and t["latency_ns"]["n"] == WRAPS


@needs_two_cores
def test_a_full_transmit_ring_is_offered_again_until_it_drains() -> None:
    r = pseudonic.run(driver="python", count=20, interval="50us", size=1000, transmit=600, tx_rate=SLOW,
                      wait_for_cores=True)  # fmt: skip
    assert r.transmit is not None and r.transmit["refused"] > 0 and r.transmit["intact"] == 600
    assert r.verdict is not None and r.verdict.passed


@needs_two_cores
@pytest.mark.parametrize(
    ("driver", "transmit", "code"),
    [
        (NoIfcs, 50, "tx-no-fcs"),
        (LastWithoutEop, 10, "tx-no-eop"),
        (NoRs, 2 * TX_RING, "tx-stalled"),
        (TransmitterOff, 20, "tx-off"),
    ],
)
def test_each_transmit_bug_is_named(driver: type, transmit: int, code: str) -> None:
    r = pseudonic.run(driver=driver, count=20, interval="50us", size=1000, transmit=transmit, wait_for_cores=True)
    assert code in codes(r), r.verdict.line() if r.verdict else r.error


@needs_two_cores
@pytest.mark.parametrize("driver", [FillsEveryDescriptor, ReclaimsWithoutDd])
def test_a_driver_that_breaks_transmit_ownership_loses_frames_and_the_sanitizer_names_tdt(driver: type) -> None:
    plain = pseudonic.run(driver=driver, count=20, interval="50us", size=1000, transmit=3 * TX_RING, tx_rate=SLOW,
                          wait_for_cores=True)  # fmt: skip
    assert codes(plain) & {"tx-lost", "tx-duplicated", "tx-corrupted", "tx-stalled"}, plain.verdict
    sanitized = pseudonic.run(driver=driver, count=20, interval="50us", size=1000, transmit=3 * TX_RING,
                              tx_rate=SLOW, sanitize=True, wait_for_cores=True)  # fmt: skip
    assert "ring-tdt-over-device-owned" in codes(sanitized)


@needs_two_cores
@pytest.mark.parametrize(
    ("driver", "words"),
    [
        (BufferOutside, "buffer_addr = 0x7fff0000 lies outside"),
        (NeverEop, "length = 0x"),
        (TdlenNotMultiple, "TDLEN = 0x18 is not a multiple of 128"),
    ],
)
def test_a_descriptor_or_ring_the_transmitter_cannot_use_stops_the_run_naming_it(driver: type, words: str) -> None:
    r = pseudonic.run(driver=driver, count=20, interval="50us", size=1000, transmit=40, wait_for_cores=True)
    assert r.error is not None and r.error["kind"] == "ring programmed wrong", r.error
    assert words in r.error["message"] and r.exit_code == 1


@needs_two_cores
def test_a_driver_with_no_transmit_entry_is_refused_when_asked_to_transmit() -> None:
    with pytest.raises(DriverLoadError, match="no transmit"):
        pseudonic.run(driver=WindowE1000, count=10, transmit=10, wait_for_cores=True)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"transmit": 10, "device": "virtio-net"}, "virtio-net"),
        ({"transmit": 10, "irq": "signal"}, "spin or eventfd"),
        ({"transmit": -1}, "give 0"),
        ({"transmit": 10, "tx_rate": "fast"}, "bit rate"),
        ({"transmit": 10, "tx_rate": "1bps"}, "out of range"),
        ({"transmit": 10, "size": 16384}, "16288"),
    ],
)
def test_bad_transmit_input_is_refused_naming_the_range(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        pseudonic.run(count=10, **kwargs)  # type: ignore[arg-type]


def test_a_capture_of_what_was_transmitted_needs_frames_to_transmit(tmp_path: Path) -> None:
    from pseudonic.cli import main

    assert main(["run", "--count", "10", "--pcap-out-transmitted", str(tmp_path / "t.pcap")]) == 2
    assert not (tmp_path / "t.pcap").exists()


@needs_two_cores
def test_the_transmitted_capture_holds_every_frame_sent_in_order(tmp_path: Path) -> None:
    from pseudonic.cli import main
    from pseudonic.frames import read_stamp

    out = tmp_path / "t.pcap"
    assert main(["run", "--count", "20", "--transmit", "300", "--pcap-out-transmitted", str(out), "--wait",
                 "-q"]) == 0  # fmt: skip
    frames = read_capture(out).frames
    assert [read_stamp(f)[0] for f in frames] == list(range(300))  # type: ignore[index]
    assert {len(f) for f in frames} == {1500}


# -- loopback ---------------------------------------------------------------------------------------------


@needs_two_cores
@pytest.mark.parametrize("driver", ["python", "c"])
def test_with_loopback_every_frame_goes_out_and_comes_back_to_the_driver(driver: str) -> None:
    r = pseudonic.run(driver=driver, count=600, loopback=True, sanitize=True, wait_for_cores=True)
    assert r.verdict is not None and r.verdict.passed, r.verdict.line()
    assert r.transmit is not None and r.transmit["intact"] == 600 and r.config["transmit"] == 600
    assert (r.sent, r.stored, r.received, r.missed) == (600, 600, 600, 0)
    assert r.timing == {}  # the frames came when the driver sent them: no deadline to judge against


@needs_two_cores
def test_with_loopback_a_frame_corrupted_on_the_way_out_is_caught_both_ways() -> None:
    r = pseudonic.run(driver=FlipsAByte, count=100, size=1000, loopback=True, wait_for_cores=True)
    assert r.transmit is not None and r.transmit["corrupted"] == 10 and r.transmit["intact"] == 90
    assert r.corrupted == 10 and r.received == 90
    assert {"tx-corrupted", "corrupted"} <= codes(r)


@needs_two_cores
@pytest.mark.parametrize("loopback", [False, True])
def test_a_recorded_transmit_run_is_replayed_transmitting_the_same(tmp_path: Path, loopback: bool) -> None:
    from pseudonic import recording

    kwargs: dict[str, object] = {"loopback": True} if loopback else {"transmit": 200, "tx_rate": "1Gbps"}
    r = pseudonic.run(driver="c", count=200, wait_for_cores=True, **kwargs)  # type: ignore[arg-type]
    rec = recording.load(recording.save(tmp_path / "t.pnic", r))
    assert (rec.options["transmit"], rec.options["loopback"]) == (200, loopback)
    assert rec.options["tx_rate"] == ("off" if loopback else 1_000_000_000)
    again = recording.replay(rec, wait_for_cores=True).result
    assert again.transmit is not None and again.transmit["intact"] == 200 and again.config["loopback"] == loopback


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"loopback": True, "faults": ["ce:0.1"]}, "without --loopback"),
        ({"loopback": True, "transmit": 5}, "leave --transmit out"),
        ({"loopback": True, "device": "virtio-net"}, "virtio-net"),
    ],
)
def test_loopback_is_refused_where_it_cannot_apply(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        pseudonic.run(count=10, **kwargs)  # type: ignore[arg-type]


# -- rings the driver places ------------------------------------------------------------------------------


@needs_two_cores
@pytest.mark.parametrize("driver", [OwnRingE1000, ResetsFirst])
def test_a_driver_on_its_own_ring_of_200_takes_every_frame_around_it(driver: type) -> None:
    r = pseudonic.run(driver=driver, count=1000, interval="30us", wait_for_cores=True, sanitize=True)
    assert r.verdict is not None and r.verdict.passed, r.verdict.line()
    assert r.register_window["rx_ring_count"] == OwnRingE1000.RING and r.received == 1000


@needs_two_cores
def test_a_linux_style_driver_on_its_own_ring_passes_every_case() -> None:
    results = check_driver(ResetsFirst, wait_for_cores=True)
    assert [r.name for r in results if not (r.passed or r.skipped)] == [], [r.detail for r in results if not r.passed]


@needs_two_cores
@pytest.mark.parametrize(
    ("driver", "words"),
    [
        (RdlenNotMultiple, "RDLEN = 0x64 is not a multiple of 128"),
        (RingOutsideDma, "RDBAL/RDBAH = 0x"),
        (NoRingProgrammed, "RCTL.EN was set with no receive ring programmed"),
    ],
)
def test_a_receive_ring_the_device_cannot_use_stops_the_run_naming_the_register(driver: type, words: str) -> None:
    r = pseudonic.run(driver=driver, count=50, interval="50us", wait_for_cores=True)
    assert r.error is not None and words in r.error["message"], r.error
    assert r.verdict is not None and not r.verdict.passed
    sanitized = pseudonic.run(driver=driver, count=50, interval="50us", sanitize=True, wait_for_cores=True)
    assert "ring-ring-invalid" in codes(sanitized)
