"""virtio-net end to end: both reference drivers against the C model, on the segment (VIRTIO 1.1 2.6, 5.1.6).

The queue's rules are tested sans-IO in test_virtio_model.py; here the C device and the drivers meet:
every frame delivered once, in order, intact, over every line; a frame over several buffers
(MRG_RXBUF); the 16-bit indices wrapping; and a driver for the other model refused at open.
"""

from __future__ import annotations

import numpy as np
import pytest

import pseudonic
from conftest import needs_two_cores
from pseudonic.drivers.e1000 import E1000
from pseudonic.drivers.virtio_net import VirtioNet
from pseudonic.errors import DriverLoadError
from pseudonic.layout import TX_STORED, VIRTIO_OFFERED, VIRTIO_RING_F_EVENT_IDX, VIRTQ_AVAIL_F_NO_INTERRUPT
from pseudonic.nic import VirtioNic


def every_stored_frame_once_in_order(r: pseudonic.RunResult) -> bool:
    """Every frame the device stored delivered once, in order, verified (a stall of this shared machine may make
    the device drop some: counted, and no fault of the driver's)."""
    stored = np.flatnonzero((r.tx["flags"] & TX_STORED) != 0)
    return bool(np.array_equal(r.delivered_seq, stored)) and r.verified and r.stored + r.missed == r.sent


@needs_two_cores
@pytest.mark.parametrize("irq", ["spin", "eventfd", "signal"])
@pytest.mark.parametrize("driver", ["python", "c"])
def test_the_reference_drivers_take_every_frame_once_in_order_on_every_line(driver: str, irq: str) -> None:
    r = pseudonic.run(device="virtio-net", driver=driver, irq=irq, count=600, interval="40us", sanitize=True,
                      wait_for_cores=True)  # fmt: skip
    assert r.verdict.passed, r.verdict.reasons
    assert every_stored_frame_once_in_order(r) and r.corrupted == 0
    assert r.ring_violations == {} and r.poisoned == 0
    # what the driver negotiated, and how the queue ended: the device consumed and used every chain it stored into
    q = r.registers
    assert q["features"] == VIRTIO_OFFERED
    assert q["used_idx"] == q["last_avail"] == r.stored


@needs_two_cores
@pytest.mark.parametrize("driver", ["python", "c"])
def test_a_frame_over_several_buffers_is_gathered_whole(driver: str) -> None:
    # 9000 B frames into 2048 B buffers: five used entries a frame, num_buffers = 5 (MRG_RXBUF, 5.1.6.4)
    r = pseudonic.run(device="virtio-net", driver=driver, count=200, size=9000, buffer_size=2048, interval="60us",
                      sanitize=True, wait_for_cores=True)  # fmt: skip
    assert r.verdict.passed, r.verdict.reasons
    assert every_stored_frame_once_in_order(r) and r.partial == 0
    assert r.registers["used_idx"] == 5 * r.stored


@needs_two_cores
def test_the_free_running_indices_wrap_at_65536_not_at_the_queue_size() -> None:
    count = 70_000  # past 65536 with room for drops a stall of this machine may cause
    r = pseudonic.run(device="virtio-net", driver="c", count=count, interval="2us", size=64, ring_size=256,
                      wait_for_cores=True)  # fmt: skip
    assert r.stored > 65_536, "the device must have used past the wrap for this test to mean anything"
    assert r.verdict.passed, r.verdict.reasons
    # every frame stored was delivered once, in order, across the wrap
    assert every_stored_frame_once_in_order(r)
    assert r.registers["used_idx"] == r.stored % 65_536


@needs_two_cores
def test_a_driver_for_the_other_model_is_refused_at_open_naming_it() -> None:
    with pytest.raises(DriverLoadError, match="built for e1000, but the device is virtio-net"):
        pseudonic.run(device="virtio-net", driver=E1000, count=10, wait_for_cores=True)
    with pytest.raises(DriverLoadError, match="built for virtio-net, but the device is e1000"):
        pseudonic.run(device="e1000", driver=VirtioNet, count=10, wait_for_cores=True)


class AsksForMac(VirtioNet):
    """Accepts VIRTIO_NET_F_MAC (bit 5), which the model does not offer."""

    def open(self, nic: VirtioNic) -> None:
        super().open(nic)
        nic.accept_features(nic.features | 1 << 5)


class WithoutVersion1(VirtioNet):
    """A legacy driver: negotiates without VIRTIO_F_VERSION_1."""

    def open(self, nic: VirtioNic) -> None:
        super().open(nic)
        nic.accept_features(1 << VIRTIO_RING_F_EVENT_IDX)


@needs_two_cores
def test_a_feature_the_device_does_not_offer_refuses_the_driver_naming_it() -> None:
    with pytest.raises(DriverLoadError, match="accepted bit 5, which the device does not offer"):
        pseudonic.run(device="virtio-net", driver=AsksForMac, count=10, wait_for_cores=True)
    with pytest.raises(DriverLoadError, match="did not accept VIRTIO_F_VERSION_1"):
        pseudonic.run(device="virtio-net", driver=WithoutVersion1, count=10, wait_for_cores=True)


class PollsWithoutInterrupts(VirtioNet):
    """Negotiates without EVENT_IDX and sets NO_INTERRUPT for good: the device must then never interrupt."""

    def open(self, nic: VirtioNic) -> None:
        super().open(nic)
        nic.accept_features(nic.features & ~(1 << VIRTIO_RING_F_EVENT_IDX))
        self.event_idx = False
        nic.avail_flags[0] = VIRTQ_AVAIL_F_NO_INTERRUPT


@needs_two_cores
def test_the_device_honours_no_interrupt_and_counts_what_it_left_unannounced() -> None:
    r = pseudonic.run(device="virtio-net", driver=PollsWithoutInterrupts, count=50, interval="20us",
                      wait_for_cores=True)  # fmt: skip
    assert r.interrupts == 0 and r.received == 0
    assert r.registers["quiet"] == r.stored == 50
    assert not r.verdict.passed
