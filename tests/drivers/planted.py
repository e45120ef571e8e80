"""Planted drivers: the reference e1000 receive path with exactly one bug each (issue 10).

:class:`SteppedE1000` is the reference path of :class:`~pseudonic.drivers.e1000.E1000`
(``clean_rx``) written as a loop over small steps -- is the descriptor done, copy
its buffer, drop or hand up the frame, refill, give descriptors back -- so that
each planted driver below overrides the step its bug lives in and keeps the
rest. Unchanged, it passes every check-driver case (``tests/test_planted.py``
checks that too), so whatever a planted driver fails is its bug's doing.

The same bugs in C are :data:`C_PLANTS`: text of ``drivers/e1000.c`` replaced
(:func:`build_c` builds one). :data:`BUGS` states, per bug, the check-driver
cases that must catch it and a sanitized run whose fault plan targets it; the
tests and ``benchmarks/planted_bugs.py`` use them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pseudonic
from pseudonic.conformance import CaseResult
from pseudonic.drivers.e1000 import E1000, RX_BUFFER_WRITE, RX_CAUSES
from pseudonic.layout import (
    RXD_ERR_FRAME,
    RXD_ERR_IPE,
    RXD_ERR_TCPE,
    RXD_STAT_DD,
    RXD_STAT_EOP,
    RXD_STAT_IXSM,
    RXD_STAT_TCPCS,
)
from pseudonic.loading import include_dir
from pseudonic.nic import Nic
from pseudonic.result import RunResult

REFERENCE_C = Path(pseudonic.__file__).parent / "drivers" / "e1000.c"

#: what a copy step returns: the frame's bytes, or (zero-copy) a view of its buffer
Frame = bytes | memoryview


class SteppedE1000(E1000):
    """The reference receive path, step by step (behaves as :class:`E1000`, only a little slower)."""

    name = "stepped"

    # -- the steps ----------------------------------------------------------------------------

    def status(self, i: int) -> int:
        """Descriptor ``i``'s status byte; the loop takes it only with DD set."""
        return self._desc[(i << 4) + 12]

    def errors(self, i: int) -> int:
        return self._desc[(i << 4) + 13]

    def length(self, i: int) -> int:
        return self._desc16[(i << 3) + 4]

    def copy(self, i: int) -> Frame:
        """Descriptor ``i``'s part of a frame, copied out of its buffer (the paper's step 10)."""
        start = self._offset[i]
        return bytes(self._pool[start : start + self.length(i)])

    def dropped(self, status: int, errors: int) -> bool:
        """A frame with a frame error is dropped and counted (8254x SDM 3.2.3)."""
        return bool(errors & RXD_ERR_FRAME)

    def hand_up(self, nic: Nic, frame: Frame, status: int, errors: int) -> None:
        """Deliver a frame, checksum-checked only if the device says so (``e1000_rx_checksum``)."""
        checked = status & RXD_STAT_TCPCS and not status & RXD_STAT_IXSM and not errors & (RXD_ERR_IPE | RXD_ERR_TCPE)
        (nic.upper.deliver_checked if checked else nic.upper.deliver)(bytes(frame))

    def refill(self, nic: Nic, i: int) -> None:
        """Give descriptor ``i`` a buffer again: the reference copies frames out and keeps each buffer."""

    def give_back(self, nic: Nic, end: int, count: int) -> None:
        """Return the ``count`` descriptors before ``end``: clear each status, then move RDT past them, keeping
        one back (RDT = end - 1: RDT == RDH would read as none; SDM 3.2.6)."""
        mask = self._mask
        for k in range(count):
            self._desc[(((end - 1 - k) & mask) << 4) + 12] = 0
        nic.write_rdt((end - 1) & mask)

    # -- the loop (E1000.clean_rx) -----------------------------------------------------------

    def clean_rx(self, nic: Nic, budget: int | None = None) -> int:
        limit = nic.ring_size if budget is None else budget
        mask, gathered = self._mask, self.gathered
        i = self.next_to_clean
        taken = errors = returned = 0
        while taken < limit:
            status = self.status(i)
            if not status & RXD_STAT_DD:
                break
            part = self.copy(i)
            frame: Frame | None = part
            if gathered or not status & RXD_STAT_EOP:  # a frame over several descriptors: gather until EOP
                gathered.append(bytes(part))
                frame = b"".join(gathered) if status & RXD_STAT_EOP else None
                if frame is not None:
                    gathered.clear()
            if frame is not None:
                err = self.errors(i)
                if self.dropped(status, err):
                    errors += 1
                else:
                    self.hand_up(nic, frame, status, err)
            self.refill(nic, i)
            i = (i + 1) & mask
            taken += 1
            if taken - returned == RX_BUFFER_WRITE:
                self.give_back(nic, i, taken - returned)
                returned = taken
        if taken:
            self.rx_errors += errors
            self.next_to_clean = i
            if taken != returned:
                self.give_back(nic, i, taken - returned)
        return taken


# -- the planted bugs, in the order ------------------------------------------------------------------


class NeverReadsIcr(SteppedE1000):
    """Bug 1: never reads ICR. The frames are all taken, but ICR is never read -- and so never cleared: on the
    level-triggered line (INTx, the 8254x's) the line stays asserted when the handler returns and it is entered
    again at once, an interrupt storm. On an edge line (MSI) nothing shows. (e1000_intr reads ICR first, and
    returns IRQ_NONE when it holds no cause: the line is shared.)"""

    name = "planted-never-reads-icr"

    def interrupt(self, nic: Nic) -> None:
        self.clean_rx(nic)  # the bug: no nic.read_icr()


class IgnoresEop(SteppedE1000):
    """Bug 2: ignores EOP, so every descriptor is taken as a whole frame and each part of a frame over several
    descriptors is delivered as a frame of its own -- Linux e1000's CVE-2009-4536 ("processing certain trailing
    payload data as if it were a complete frame"), fixed by dropping every descriptor until EOP."""

    name = "planted-ignores-eop"

    def status(self, i: int) -> int:
        return super().status(i) | RXD_STAT_EOP  # the bug: as if every descriptor ended a frame


class ReturnsWithDdSet(SteppedE1000):
    """Bug 3: hands descriptors back to the device (RDT past them) and only then clears their status. The
    device may take them, and a driver may take one again for a frame already delivered, while DD is still set;
    e1000_clean_rx_irq clears ``rx_desc->status`` before e1000_alloc_rx_buffers moves RDT."""

    name = "planted-returns-with-dd-set"

    def give_back(self, nic: Nic, end: int, count: int) -> None:
        mask = self._mask
        nic.write_rdt((end - 1) & mask)  # the bug: RDT first ...
        for k in range(count):
            self._desc[(((end - 1 - k) & mask) << 4) + 12] = 0  # ... status after


class CopiesBeforeDd(SteppedE1000):
    """Bug 4: reads a buffer before checking DD. When an interrupt comes it copies the buffer at next-to-clean
    at once ("an interrupt means the frame is there"), and only then looks at DD; the copy it made is what it
    delivers once DD shows, if need be at a later interrupt. An interrupt that comes before the device wrote the
    frame (early, or spurious) leaves it holding what the buffer held then -- the software form of a missing read
    barrier after the DD check (igb/ixgbe's ``dma_rmb()`` after reading the status)."""

    name = "planted-copies-before-dd"
    early: tuple[int, bytes] | None = None

    def interrupt(self, nic: Nic) -> None:
        if self.early is None:  # the bug: the buffer read before DD is looked at
            start = self._offset[self.next_to_clean]
            self.early = (self.next_to_clean, bytes(self._pool[start : start + nic.buf_size]))
        super().interrupt(nic)

    def copy(self, i: int) -> Frame:
        if self.early is not None and self.early[0] == i:
            buffer, self.early = self.early[1], None
            return buffer[: self.length(i)]
        return super().copy(i)


class IgnoresErrors(SteppedE1000):
    """Bug 5: ignores the error byte, delivering frames the device marked RXE/CE/SE/SEQ/CXE as good ones (the
    check e1000's TBI workaround relaxes for one case only, ``TBI_ACCEPT``) and counting no rx_errors."""

    name = "planted-ignores-errors"

    def dropped(self, status: int, errors: int) -> bool:
        return False  # the bug: the error byte never looked at


class TrustsChecksumBits(SteppedE1000):
    """Bug 6: marks a frame checksum-checked (CHECKSUM_UNNECESSARY) when the device says it checked the
    checksum (TCPCS, IXSM clear) without looking at whether it found it bad (IPE/TCPE): a frame with a bad
    checksum handed up as good, which the stack will not check again."""

    name = "planted-trusts-checksum-bits"

    def hand_up(self, nic: Nic, frame: Frame, status: int, errors: int) -> None:
        checked = status & RXD_STAT_TCPCS and not status & RXD_STAT_IXSM  # the bug: no errors & (IPE | TCPE)
        (nic.upper.deliver_checked if checked else nic.upper.deliver)(bytes(frame))


class UsesAfterRecycle(SteppedE1000):
    """Bug 7: use after recycle. Zero-copy: it hands frames up as a batch, by reference to their buffers, after
    it gave the batch's descriptors back (netif_receive_skb_list style) -- so it copies a buffer the device may
    already be writing the next frame into (page-reuse drivers' classic)."""

    name = "planted-uses-after-recycle"

    def open(self, nic: Nic) -> None:
        super().open(nic)
        self.batch: list[tuple[Frame, int, int]] = []

    def copy(self, i: int) -> Frame:
        start = self._offset[i]
        return self._pool[start : start + self.length(i)]  # a view, not a copy

    def hand_up(self, nic: Nic, frame: Frame, status: int, errors: int) -> None:
        self.batch.append((frame, status, errors))

    def give_back(self, nic: Nic, end: int, count: int) -> None:
        super().give_back(nic, end, count)
        for frame, status, errors in self.batch:  # the bug: read after the descriptors went back
            super().hand_up(nic, frame, status, errors)
        self.batch.clear()


class RdtAtHead(SteppedE1000):
    """Bug 8: RDT off by one: writes RDT = next_to_clean, handing back every descriptor; when the device has
    caught up that is RDT == RDH, which the 8254x reads as "no descriptors" (SDM 3.2.6). e1000_alloc_rx_buffers
    steps its index back one (``if (unlikely(i-- == 0))``) before writing RDT for exactly this reason."""

    name = "planted-rdt-at-head"

    def give_back(self, nic: Nic, end: int, count: int) -> None:
        for k in range(count):
            self._desc[(((end - 1 - k) & self._mask) << 4) + 12] = 0
        nic.write_rdt(end)  # the bug: end, not end - 1


class RdtNotWrapped(SteppedE1000):
    """Bug 9: RDT not wrapped: computes end - 1 + ring_size (to keep it from going negative) and forgets the
    ``& (ring_size - 1)``, writing RDT past the ring."""

    name = "planted-rdt-not-wrapped"

    def give_back(self, nic: Nic, end: int, count: int) -> None:
        for k in range(count):
            self._desc[(((end - 1 - k) & self._mask) << 4) + 12] = 0
        nic.write_rdt(end - 1 + nic.ring_size)  # the bug: no & (ring_size - 1)


class SharesBuffers(SteppedE1000):
    """Bug 10: refills each descriptor it cleans with the buffer of the descriptor before it (its buffer table
    indexed i - 1): two descriptors the device owns point at one buffer, and two frames land in it."""

    name = "planted-shares-buffers"

    def refill(self, nic: Nic, i: int) -> None:
        addr = int(nic.ring["buffer_addr"][(i - 1) & self._mask])  # the bug: i - 1, not i
        nic.ring["buffer_addr"][i] = addr
        self._offset[i] = addr - nic.buf_off


class BufferOutsidePool(SteppedE1000):
    """Bug 11: refills descriptor i with the address of the end of its buffer, buf_off + (i + 1) * buf_size,
    instead of its start: the last descriptor's buffer lies past the pool (the device would DMA over whatever
    lies there)."""

    name = "planted-buffer-outside-pool"

    def refill(self, nic: Nic, i: int) -> None:
        addr = nic.buf_off + (i + 1) * nic.buf_size  # the bug: i + 1, not i
        nic.ring["buffer_addr"][i] = addr
        self._offset[i] = addr - nic.buf_off


class OnePerInterrupt(SteppedE1000):
    """Bug 12: takes exactly one descriptor per interrupt, as if each interrupt announced one frame (a common
    mistake in teaching-OS e1000 labs, whose receive function must loop): when interrupts are fewer than frames
    -- coalesced, lost, or a burst -- frames are left in the ring, and each later one falls further behind."""

    name = "planted-one-per-interrupt"

    def interrupt(self, nic: Nic) -> None:
        if nic.read_icr() & RX_CAUSES:
            self.clean_rx(nic, 1)  # the bug: a budget of one descriptor


class TakesWithoutDd(SteppedE1000):
    """Bug 13: takes the descriptor at next-to-clean on every interrupt without looking at DD -- a do-while
    where a while belongs ("the interrupt says there is a frame") -- and the rest while DD is set: an interrupt
    with no new frame (spurious, early, or one a previous run already served) takes a descriptor the device has
    not written, and hands it back too."""

    name = "planted-takes-without-dd"
    first = False

    def clean_rx(self, nic: Nic, budget: int | None = None) -> int:
        self.first = True
        return super().clean_rx(nic, budget)

    def status(self, i: int) -> int:
        if self.first:
            self.first = False
            return super().status(i) | RXD_STAT_DD  # the bug: the first one taken as done
        return super().status(i)


# -- the bugs: where each is planted, and what must catch it ---------------------------------------------------


@dataclass(frozen=True)
class Replace:
    """One planted change to e1000.c: ``old`` replaced by ``new``, where ``old`` occurs exactly ``count`` times."""

    old: str
    new: str
    count: int = 1


@dataclass(frozen=True)
class Bug:
    number: int
    name: str
    #: the bug planted in Python
    python: type[SteppedE1000]
    #: check-driver cases that must fail, each with a text its detail must contain
    cases: dict[str, str]
    #: the targeted run: pseudonic.run's keyword arguments (faults, irq_mode, ring_size, ...)
    run: dict[str, Any]
    #: verdict finding codes the targeted run must fail with
    codes: tuple[str, ...]
    #: a further check on the targeted run's result, beyond its codes
    also: Callable[[RunResult], bool] | None = field(default=None, compare=False)


#: the reference loop's end: clear the status, next descriptor, RDT every RX_BUFFER_WRITE and at the end
LOOP_END = """\
        d->status = 0;
        i = (i + 1) & mask;
        if (++taken - returned == RX_BUFFER_WRITE) {
            pnic_rdt_write(nic, (i - 1) & mask);
            returned = taken;
        }
    }
    if (taken != returned)
        pnic_rdt_write(nic, (i - 1) & mask);
"""
CLEAR_AND_NEXT = "        d->status = 0;\n        i = (i + 1) & mask;\n"
RDT_WRITE = "pnic_rdt_write(nic, (i - 1) & mask);"
DELIVER = "            deliver(nic, d, status, buf, d->length);\n        }\n"

#: The bugs planted in e1000.c, by number (4, reading before DD, is planted in Python only).
C_PLANTS: dict[int, tuple[Replace, ...]] = {
    1: (Replace("    const uint32_t icr = pnic_icr_read(nic);\n",
                "    const uint32_t icr = RX_CAUSES; /* planted bug 1: ICR never read, so never cleared */\n"),),
    2: (Replace("        uint8_t status = pnic_desc_status(d);\n",
                "        uint8_t status = pnic_desc_status(d) | PNIC_RXD_STAT_EOP; /* planted bug 2 */\n"),),
    3: (Replace(LOOP_END, """\
        i = (i + 1) & mask;
        if (++taken - returned == RX_BUFFER_WRITE) {
            pnic_rdt_write(nic, (i - 1) & mask);
            returned = taken;
            for (uint32_t k = 0; k < RX_BUFFER_WRITE; k++) /* planted bug 3: status cleared after RDT */
                nic->ring[(i - 1 - k) & mask].status = 0;
        }
    }
    if (taken != returned) {
        pnic_rdt_write(nic, (i - 1) & mask);
        for (uint32_t k = 0; k < taken - returned; k++) /* planted bug 3: status cleared after RDT */
            nic->ring[(i - 1 - k) & mask].status = 0;
    }
"""),),
    5: (Replace("d->errors & PNIC_RXD_ERR_FRAME", "d->errors & 0 /* planted bug 5: the error byte ignored */", 2),),
    6: (Replace("""\
    int checked = !(status & PNIC_RXD_STAT_IXSM) && (status & PNIC_RXD_STAT_TCPCS) &&
                  !(d->errors & (PNIC_RXD_ERR_TCPE | PNIC_RXD_ERR_IPE));
""", """\
    int checked = !(status & PNIC_RXD_STAT_IXSM) && (status & PNIC_RXD_STAT_TCPCS); /* planted bug 6: */
    (void)d; /* IPE and TCPE never looked at */
"""),),
    7: (
        Replace("static uint32_t gathered_len;\n", """\
static uint32_t gathered_len;
/* planted bug 7: frames handed up by reference after their descriptors went back */
static struct {
    const struct pnic_rx_desc *d;
    const uint8_t *buf;
    uint32_t length;
    uint8_t status;
} batch[RX_BUFFER_WRITE];
static uint32_t batched;
"""),
        Replace(DELIVER + LOOP_END, """\
            batch[batched].d = d, batch[batched].buf = buf, batch[batched].length = d->length;
            batch[batched++].status = status;
        }
        d->status = 0;
        i = (i + 1) & mask;
        if (++taken - returned == RX_BUFFER_WRITE) {
            pnic_rdt_write(nic, (i - 1) & mask);
            returned = taken;
            for (uint32_t k = 0; k < batched; k++)
                deliver(nic, batch[k].d, batch[k].status, batch[k].buf, batch[k].length);
            batched = 0;
        }
    }
    if (taken != returned)
        pnic_rdt_write(nic, (i - 1) & mask);
    for (uint32_t k = 0; k < batched; k++)
        deliver(nic, batch[k].d, batch[k].status, batch[k].buf, batch[k].length);
    batched = 0;
"""),
    ),
    8: (Replace(RDT_WRITE, "pnic_rdt_write(nic, i); /* planted bug 8: RDT = next_to_clean */", 2),),
    9: (Replace(RDT_WRITE, "pnic_rdt_write(nic, i - 1 + nic->ring_size); /* planted bug 9: not wrapped */", 2),),
    10: (Replace(CLEAR_AND_NEXT, """\
        d->buffer_addr = nic->ring[(i - 1) & mask].buffer_addr; /* planted bug 10 */
""" + CLEAR_AND_NEXT),),
    11: (Replace(CLEAR_AND_NEXT, """\
        d->buffer_addr = ((const struct pnic_header *)nic->base)->buf_off +
                         (uint64_t)(i + 1) * nic->buf_size; /* planted bug 11 */
""" + CLEAR_AND_NEXT),),
    12: (Replace("        clean_rx(nic, nic->ring_size);\n", "        clean_rx(nic, 1); /* planted bug 12 */\n"),),
    13: (Replace("        if (!(status & PNIC_RXD_STAT_DD))\n            break;\n",
                 "        if (!(status & PNIC_RXD_STAT_DD) && taken != 0) /* planted bug 13: the first without DD */\n"
                 "            break;\n"),),
}  # fmt: skip

#: a ring the plan's burst overflows, as the check-driver case "fault burst" does
BURST: dict[str, Any] = {"faults": ["burst:48:0.02"], "ring_size": 32}
ERROR_BIT = "delivered although their descriptor had an error bit"

BUGS: tuple[Bug, ...] = (
    Bug(1, "never reads ICR", NeverReadsIcr,
        cases={"ICR, level line": "driver interrupt storm"},
        run={"irq_mode": "level"}, codes=("driver-failed",),
        also=lambda r: r.error is not None and r.error["kind"] == "driver interrupt storm"),
    Bug(2, "ignores EOP", IgnoresEop,
        cases={"fault split": "parts of split frames"},
        run={"faults": ["split:3:0.2"]}, codes=("fault-split", "corrupted"), also=lambda r: r.partial > 0),
    Bug(3, "returns with DD set", ReturnsWithDdSet,
        cases={"fault split": "DD still set", "fault lost-irq": "DD still set", "fault burst": "DD still set"},
        run=BURST, codes=("ring-dd-still-set",)),
    Bug(4, "copies before DD", CopiesBeforeDd,
        cases={"fault early-irq": "poison", "fault spurious": "poison"},
        run={"faults": ["early-irq:20us:0.1"]}, codes=("corrupted", "undelivered"), also=lambda r: r.poisoned > 0),
    Bug(5, "ignores errors", IgnoresErrors,
        cases={f"fault {k}": ERROR_BIT for k in ("rxe", "ce", "se", "seq", "cxe")},
        run={"faults": ["ce:0.1"]}, codes=("fault-ce", "error-delivered", "rx-errors-miscounted")),
    Bug(6, "trusts checksum bits", TrustsChecksumBits,
        cases={"fault ipe": "handed up as checksum-checked", "fault tcpe": "handed up as checksum-checked"},
        run={"faults": ["ipe:0.1", "tcpe:0.1"]}, codes=("fault-ipe", "fault-tcpe")),
    Bug(7, "uses after recycle", UsesAfterRecycle,
        cases={"fault lost-irq": "poison", "fault burst": "poison"},
        run={"faults": ["lost-irq:0.1"]}, codes=("corrupted", "undelivered"), also=lambda r: r.poisoned > 0),
    Bug(8, "RDT at head", RdtAtHead,
        cases={"delivery": "RDT written equal to RDH"},
        run=BURST, codes=("ring-rdt-at-head",)),
    Bug(9, "RDT not wrapped", RdtNotWrapped,
        cases={"wrap-around": "RDT written past the ring"},
        run=BURST, codes=("ring-rdt-outside-ring",)),
    Bug(10, "shares buffers", SharesBuffers,
        cases={"wrap-around": "one buffer given to the device by two descriptors"},
        run=BURST, codes=("ring-buffer-shared",)),
    Bug(11, "buffer outside pool", BufferOutsidePool,
        cases={"wrap-around": "outside the receive buffer pool"},
        run=BURST, codes=("ring-buffer-outside-pool",)),
    Bug(12, "one per interrupt", OnePerInterrupt,
        cases={"fault lost-irq": "never delivered", "fault burst": "never delivered"},
        run={"faults": ["lost-irq:0.1"]}, codes=("undelivered",)),
    Bug(13, "takes without DD", TakesWithoutDd,
        cases={"fault spurious": "RDT written equal to RDH", "fault early-irq": "never delivered"},
        run={"faults": ["spurious:0.1"]}, codes=("ring-rdt-at-head", "undelivered")),
)  # fmt: skip

#: the targeted runs' plan: 200 frames of 1500 B, 50 us apart (check-driver's fault cases), a fixed seed
RUN: dict[str, Any] = {"interval": "50us", "count": 200, "size": 1500, "fault_seed": 7}


def planted_source(bug: Bug) -> str:
    """e1000.c with ``bug`` planted; each replaced text must be found exactly as often as stated."""
    text = REFERENCE_C.read_text()
    for change in C_PLANTS[bug.number]:
        found = text.count(change.old)
        if found != change.count:
            raise ValueError(f"bug {bug.number}: {change.old!r} found {found} times in e1000.c, not {change.count}")
        text = text.replace(change.old, change.new)
    return text.replace('pnic_driver_name[] = "c"', f'pnic_driver_name[] = "planted-{bug.number}"')


def build_c(bug: Bug, out: Path, cc: str = "cc") -> Path:
    """The C reference driver with ``bug`` planted, built as ``out`` with warnings as errors."""
    src = out.with_suffix(".c")
    src.write_text(planted_source(bug))
    cmd = [cc, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{include_dir()}", str(src), "-o"]
    done = subprocess.run([*cmd, str(out)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bug {bug.number}: {src} does not build:\n{done.stderr}")
    return out


def not_caught(bug: Bug, results: list[CaseResult]) -> list[str]:
    """The bug's cases that check-driver did not fail naming its problem (none: caught as expected)."""
    by_name = {r.name: r for r in results}
    return [name for name, text in bug.cases.items() if by_name[name].passed or text not in by_name[name].detail]
