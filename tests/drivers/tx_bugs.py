"""The Python reference driver with one classic transmit bug planted each: what ``--transmit`` must catch."""

from __future__ import annotations

from pseudonic.drivers.e1000 import E1000, TX_RING
from pseudonic.layout import REGISTERS, TCTL_EN, TX_BUFFER, TXD_CMD_EOP, TXD_CMD_IFCS, TXD_CMD_RS
from pseudonic.nic import Nic


class _OneDescriptor(E1000):
    """Frames of one buffer each, queued with the command ``cmd(k)`` for the k-th frame."""

    def setup_tx(self, nic: Nic) -> None:
        super().setup_tx(nic)
        self.sent = 0

    def cmd(self, k: int) -> int:
        return TXD_CMD_IFCS | TXD_CMD_RS | TXD_CMD_EOP

    def transmit(self, nic: Nic, frame: bytes) -> bool:
        assert len(frame) <= TX_BUFFER
        if self._tx_free() < 1:
            self.clean_tx()
            if self._tx_free() < 1:
                return False
        i = self.tx_next_to_use
        self._tx_bufs[i * TX_BUFFER : i * TX_BUFFER + len(frame)] = frame
        self.tx_ring["length"][i] = len(frame)
        self.tx_ring["status"][i] = 0
        self.tx_ring["cmd"][i] = self.cmd(self.sent)
        self.place(i)
        self.sent += 1
        self.tx_next_to_use = (i + 1) % TX_RING
        nic.write_tdt(self.tx_next_to_use)
        return True

    def place(self, i: int) -> None:
        """Descriptor ``i`` is filled: its buffer_addr stays the one set at open."""


class NoIfcs(_OneDescriptor):
    name = "no-ifcs"

    def cmd(self, k: int) -> int:
        return TXD_CMD_RS | TXD_CMD_EOP


class NoRs(_OneDescriptor):
    """Never asks for status, yet reclaims only descriptors with DD: its ring fills and stays full."""

    name = "no-rs"

    def cmd(self, k: int) -> int:
        return TXD_CMD_IFCS | TXD_CMD_EOP


class LastWithoutEop(_OneDescriptor):
    """Leaves EOP off its tenth frame (a run of --transmit 10 ends with it unfinished)."""

    name = "no-eop"

    def cmd(self, k: int) -> int:
        return TXD_CMD_IFCS | TXD_CMD_RS | (0 if k == 9 else TXD_CMD_EOP)


class NeverEop(_OneDescriptor):
    """Leaves EOP off every frame: the device gathers them into one frame past the transmitter's limit."""

    name = "never-eop"

    def cmd(self, k: int) -> int:
        return TXD_CMD_IFCS | TXD_CMD_RS


class FillsEveryDescriptor(_OneDescriptor):
    """Counts one free descriptor too many: it queues the last one too, and TDT comes round to TDH, which reads
    as an empty ring (SDM 3.4) -- and a ring it then takes for empty."""

    name = "fills-every-descriptor"

    def _tx_free(self) -> int:
        return (self.tx_next_to_clean - self.tx_next_to_use - 1) % TX_RING + 1


class ReclaimsWithoutDd(_OneDescriptor):
    """Takes every queued descriptor back when its ring looks full, without looking at DD."""

    name = "reclaims-without-dd"

    def clean_tx(self) -> int:
        n = (self.tx_next_to_use - self.tx_next_to_clean) % TX_RING
        self.tx_next_to_clean = self.tx_next_to_use
        return n


class BufferOutside(_OneDescriptor):
    """Points its fifth frame's descriptor at an address outside the pool and the DMA memory."""

    name = "buffer-outside"

    def place(self, i: int) -> None:
        if self.sent == 4:
            self.tx_ring["buffer_addr"][i] = 0x7FFF0000


class TransmitterOff(E1000):
    """Programs the transmit ring but never sets TCTL.EN."""

    name = "tx-off"

    def setup_tx(self, nic: Nic) -> None:
        super().setup_tx(nic)
        nic.write_reg(REGISTERS["TCTL"], 0)


class TdlenNotMultiple(E1000):
    """Programs a transmit ring of 24 bytes: not a multiple of 128."""

    name = "tdlen-24"

    def setup_tx(self, nic: Nic) -> None:
        super().setup_tx(nic)
        nic.write_reg(REGISTERS["TCTL"], 0)
        nic.write_reg(REGISTERS["TDLEN"], 24)
        nic.write_reg(REGISTERS["TCTL"], TCTL_EN)


class FlipsAByte(_OneDescriptor):
    """Corrupts the last byte of every tenth frame it queues (a buffer written while the device may read it)."""

    name = "flips-a-byte"

    def place(self, i: int) -> None:
        if self.sent % 10 == 9:
            end = i * TX_BUFFER + int(self.tx_ring["length"][i]) - 1
            self._tx_bufs[end] = self._tx_bufs[end] ^ 0xFF
