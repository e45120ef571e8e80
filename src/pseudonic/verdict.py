"""A run's verdict: PASS or FAIL with the reasons, from its counts alone (pure, no processes).

The rule, stated once (README "Verdict and exit status"):

- PASS: the driver delivered every frame the device stored, once, in order,
  intact, delivered none the device marked with a frame error, and counted
  exactly the frame errors it was given (8254x SDM 3.2.3: such a frame is
  dropped and counted) -- a frame over several descriptors it may instead
  drop whole, and count or not; it mishandled no injected fault
  (:mod:`pseudonic.faults`), and the ring sanitizer, when on, found nothing;
- FAIL: the driver failed (exception, crash, hang, early exit), or any of
  the above does not hold.

On virtio-net (VIRTIO 1.1 split virtqueue) the same rule holds with its own
words: a chain made available, a used entry taken, interrupts asked for with
used_event or VIRTQ_AVAIL_F_NO_INTERRUPT (2.6.7) -- the findings name those,
never RDT, IMS or DD, and two more read the queue as the run left it
(``interrupt-suppressed``, ``event-idx``: why frames were left behind).

Frames the device dropped for want of a descriptor (MPC) mean the driver was
too slow for the pace -- the paper's E3 measures exactly that -- so they fail
a run only past a limit the user sets (``--max-missed N`` or ``P%``), as
pktgen and testpmd report drops without judging them.

Each reason names what went wrong and what it usually means in a driver, so
that a failure is something a user can act on, never only a count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .faults import MEANING
from .layout import VIRTIO_RING_F_EVENT_IDX, VIRTQ_AVAIL_F_NO_INTERRUPT


@dataclass(frozen=True)
class MissedLimit:
    """How many device drops (MPC) a run may have and still pass: a count, or a share of the packets."""

    count: int | None = None
    share: float | None = None

    def allows(self, missed: int, packets: int) -> bool:
        if self.count is not None:
            return missed <= self.count
        assert self.share is not None
        return missed <= self.share * packets

    def __str__(self) -> str:
        return str(self.count) if self.count is not None else f"{100 * (self.share or 0):g}%"


def parse_missed_limit(text: str | int | None) -> MissedLimit | None:
    """``None`` (drops never fail a run), ``N`` packets, or ``P%`` of the packets sent."""
    if text is None:
        return None
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str):
        raise ConfigError(f"max missed {text!r} is not a count or a percentage: give N (e.g. 0) or P% (e.g. 0.1%)")
    m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(%?)\s*", text)
    if m is None:
        raise ConfigError(f"max missed {text!r} is not a count or a percentage: give N (e.g. 0) or P% (e.g. 0.1%)")
    value, pct = float(m.group(1)), bool(m.group(2))
    if pct:
        if not 0 <= value <= 100:
            raise ConfigError(f"max missed {text!r} is out of range: give 0%..100%")
        return MissedLimit(share=value / 100)
    if not value.is_integer() or value < 0:
        raise ConfigError(f"max missed {text!r} is out of range: give a whole number of packets, 0 or more")
    return MissedLimit(count=int(value))


@dataclass(frozen=True)
class Finding:
    """One reason a run failed (or a note that did not fail it): what, and what it usually means."""

    code: str
    what: str
    meaning: str = ""
    fails: bool = True

    def __str__(self) -> str:
        return f"{self.what}: {self.meaning}" if self.meaning else self.what


@dataclass(frozen=True)
class Verdict:
    passed: bool
    findings: tuple[Finding, ...]
    #: the signal that stopped the run early, if one did (then the figures are partial)
    interrupted_by: str | None = None

    @property
    def reasons(self) -> list[Finding]:
        return [f for f in self.findings if f.fails]

    @property
    def notes(self) -> list[Finding]:
        return [f for f in self.findings if not f.fails]

    def line(self) -> str:
        """The one line a summary ends with."""
        head = "PASS" if self.passed else "FAIL"
        if self.interrupted_by:
            head = f"INTERRUPTED by {self.interrupted_by} (partial figures); {head} so far"
        if self.reasons:
            return f"{head}: " + "; ".join(str(r) for r in self.reasons)
        return head + "".join(f" ({n})" for n in self.notes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "interrupted_by": self.interrupted_by,
            "reasons": [{"code": f.code, "what": f.what, "meaning": f.meaning} for f in self.reasons],
            "notes": [{"code": f.code, "what": f.what, "meaning": f.meaning} for f in self.notes],
        }


#: What each ring sanitizer finding (layout.SAN_KINDS) is, and what it usually means in a driver.
RING_VIOLATIONS: dict[str, tuple[str, str]] = {
    "rdt-outside-ring": ("RDT written past the ring", "an index not wrapped with & (ring_size - 1)"),
    "rdt-at-head": (
        "RDT written equal to RDH: every descriptor handed back, which the device reads as none",
        "hand back all but one: RDT = next_to_clean - 1 (SDM 3.2.6)",
    ),
    "rdt-over-device-owned": (
        "RDT moved back, or past RDH, over descriptors the device owns",
        "RDT written from a stale or wrong index, or descriptors handed back twice",
    ),
    "dd-still-set": (
        "a descriptor handed back with DD still set",
        "clear status before returning a descriptor, or it is taken again for a frame already delivered",
    ),
    "buffer-outside-pool": (
        "a buffer_addr outside the receive buffer pool",
        "a descriptor refilled with a wrong or uninitialised address",
    ),
    "buffer-shared": (
        "one buffer given to the device by two descriptors",
        "a buffer recycled while another descriptor still holds it: two frames land in one buffer",
    ),
    "ring-invalid": (
        "a ring enabled (RCTL.EN or TCTL.EN) that the device cannot use",
        "program RDBAL/RDBAH/RDLEN (TDBAL/TDBAH/TDLEN) with a 16-byte aligned ring from DMA memory, a multiple of "
        "128 bytes long, before setting EN (SDM 14.4, 14.5); the run stopped naming the register",
    ),
    "tdt-outside-ring": ("TDT written past the transmit ring", "an index not wrapped at the ring's size"),
    "tdt-over-device-owned": (
        "TDT moved back, or past TDH, over transmit descriptors the device still owns",
        "the ring was full: a driver must leave one descriptor free (TDT == TDH reads as empty) and reclaim only "
        "descriptors with DD set (SDM 3.4)",
    ),
    "tx-buffer-outside": (
        "a transmit descriptor whose buffer lies outside the buffer pool and DMA memory",
        "a descriptor filled with a wrong or uninitialised address: transmit buffers come from DMA memory",
    ),
}


#: virtio-net's sanitizer findings (and the one it shares with e1000, in its words): checked at every publication
#: of avail.idx (``_engine/pnic_sanitize.c``, VIRTIO 1.1 2.6.13).
VIRTIO_RING_VIOLATIONS: dict[str, tuple[str, str]] = {
    "avail-overrun": (
        "avail.idx moved more than the queue's size past the entries the device had used (or moved back)",
        "avail.idx published from a wrong count, or chains made available that were never taken from the used "
        "ring: the device can own at most the queue's size of them (2.6.13)",
    ),
    "buffer-reused": (
        "a chain made available again while the device still owned it (before its used entry was published)",
        "a head put back in the available ring twice, or one taken from a used entry read twice (last_used not "
        "advanced, or wrapped at the queue size instead of at 2^16: 2.6.8)",
    ),
    "head-outside": (
        "an available entry naming a descriptor past the table",
        "a head not masked with & (queue size - 1), or an available-ring entry left unwritten",
    ),
    "not-writable": (
        "a receive chain the device may not write (a descriptor without VIRTQ_DESC_F_WRITE, or a chain that loops "
        "or leaves the table)",
        "receive buffers are device-writable (2.6.5): set VIRTQ_DESC_F_WRITE on each, and NEXT only with a valid next",
    ),
    "buffer-outside-pool": (
        "a descriptor whose addr and len lie outside the receive buffer pool",
        "a descriptor refilled with a wrong or uninitialised address, or a len past its buffer",
    ),
}

#: What a driver that mishandles each fault kind usually gets wrong on virtio-net (faults.MEANING is e1000's).
VIRTIO_FAULT_MEANING = {
    "split": "a part of a frame over several buffers was delivered as a frame: gather num_buffers used entries "
    "into one frame (VIRTIO_NET_F_MRG_RXBUF, 5.1.6.4), or drop them all",
    "spurious": "an interrupt with no new used entry made the driver take one: take only entries below used.idx",
    "lost-irq": "a used entry announced by no interrupt of its own was taken twice",
    "early-irq": "an entry taken before used.idx passed it: a buffer read before the device wrote it",
    "burst": "frames of a burst that overflowed the queue were delivered twice",
}


@dataclass(frozen=True)
class Counts:
    """What the verdict reads from a run (every field from the run's records or the driver's report)."""

    packets: int  # schedule entries that carried a packet
    stored: int  # written to a descriptor by the device
    error_descriptors: int  # stored with an error bit set
    received: int  # distinct good frames delivered (verified), or deliveries (null layer)
    delivered_with_error: int  # deliveries of frames whose descriptor carried an error bit
    missed: int  # MPC
    duplicated: int
    reordered: int
    corrupted: int
    rx_errors: int | None  # None: the driver keeps no rx_errors
    verified: bool
    interrupts: int
    handler_runs: int
    ims: int  # IMS when the run ended
    rdt_written: bool  # the driver moved RDT at least once
    failure: dict[str, Any] | None = None
    #: stored frames over several descriptors that were not delivered: a driver may drop them whole
    split_dropped: int = 0
    #: the run ended with the device owning no descriptor (RDT = RDH) and none written back waiting (no DD):
    #: the driver held every descriptor, cleaned, and handed none back
    starved: bool = False
    #: of the corrupted deliveries: poisoned by the sanitizer, parts of split frames; how the first differ
    poisoned: int = 0
    partial: int = 0
    corruption: tuple[str, ...] = ()
    #: per fault kind: injected, delivered, dropped, misdelivered (pseudonic.faults.accounts)
    faults: dict[str, dict[str, int]] = field(default_factory=dict)
    #: per sanitizer finding: count and the first one (packet, descriptor, time_ns, rdt)
    ring_violations: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the device model ("e1000", "virtio-net"): the findings name its registers
    device: str = "e1000"
    #: the run had the sanitizer on (--sanitize): a write to a register the model does not have fails it
    sanitized: bool = False
    #: e1000: writes to registers the model does not have, and the offset of the first
    unmodelled: int = 0
    unmodelled_first: int = 0
    #: e1000: the driver collected frame errors from the statistics registers (CRCERRS, RXERRC), as real drivers do
    errors_by_statistics: bool = False
    #: e1000: frames the device discarded as too long, RCTL.LPE clear (ROC)
    discarded_long: int = 0
    #: e1000: frames that arrived with the receiver off (RCTL.EN clear)
    receiver_off: int = 0
    #: e1000: descriptors written back (DD set) that the driver had not taken when the run ended
    left_in_ring: int = 0
    #: virtio-net: the queue when the driver's handling ended, before its close (SegmentView.queue_state); empty
    #: for e1000
    queue: dict[str, int] = field(default_factory=dict)
    #: e1000 with --transmit: what the driver transmitted (pseudonic.transmit.TransmitAccount.to_dict); None without
    transmit: dict[str, Any] | None = None


def judge(c: Counts, max_missed: MissedLimit | None = None, interrupted_by: str | None = None) -> Verdict:
    """The verdict on one run's counts (see the module docstring for the rule)."""
    out: list[Finding] = []
    virtio = c.device == "virtio-net"
    if c.failure is not None:
        kind = str(c.failure.get("kind", "driver failed"))
        code = "driver-failed" if kind.startswith("driver") else "run-failed"
        out.append(Finding(code, kind, failure_text(c.failure)))
    good = c.stored - c.error_descriptors
    undelivered = good - (c.received - c.delivered_with_error) - c.split_dropped
    if virtio:
        out += _virtio_delivery(c, undelivered, good)
    elif c.packets and c.stored == 0 and not c.rdt_written:
        out.append(Finding(
            "rdt-never-written", f"the device had no descriptor for any of {c.packets} packets",
            "RDT was never written; hand the ring to the device in open (nic.write_rdt(nic.ring_size - 1), "
            "pnic_write_rdt in C)",
        ))  # fmt: skip
    elif c.stored and c.interrupts == 0 and c.ims == 0:
        out.append(Finding(
            "interrupts-masked", f"no interrupt was raised for {c.stored} stored frames",
            "IMS masked every cause; call nic.enable_interrupts(...) in open (pnic_enable_interrupts in C) -- "
            "interrupts start masked, as on the 8254x",
        ))  # fmt: skip
    elif undelivered > 0 and c.failure is None and interrupted_by and undelivered <= c.left_in_ring:
        # Stopped by a signal, the driver was stopped with them: every one is still in the ring, none lost.
        out.append(Finding(
            "undelivered", f"{undelivered} of {good} stored frames were still in the ring when the run was stopped",
            "not judged: the stop came before the driver took them", fails=False,
        ))  # fmt: skip
    elif undelivered > 0 and c.failure is None:
        out.append(Finding(
            "undelivered", f"{undelivered} of {good} stored frames never delivered",
            "their buffers were read after they were handed back, or before DD: the poisoned deliveries"
            if c.poisoned else
            "descriptors with DD set were left in the ring (the handler stopped early, or lost a wake-up)"
            if c.handler_runs else "the driver's handler never ran",
        ))  # fmt: skip
    if c.duplicated:
        out.append(Finding(
            "duplicated", f"{c.duplicated} frames delivered more than once",
            "a used entry taken twice: last_used not advanced past it, or wrapped at the queue size instead of at "
            "2^16 (VIRTIO 1.1 2.6.8), or its chain made available again before its frame was copied out"
            if virtio else
            "a descriptor taken twice: its status not cleared before it was handed back, next-to-clean not "
            "advanced, or an index that wraps wrong",
        ))  # fmt: skip
    if c.reordered:
        out.append(Finding("reordered", f"{c.reordered} frames delivered out of order",
                           "used entries taken out of order: last_used reset or skipped, or a batch handed up in "
                           "another order (the device uses chains in order, 2.6.8)" if virtio else
                           "descriptors taken out of ring order: next-to-clean reset or skipped, or a batch "
                           "handed up in another order"))  # fmt: skip
    if c.corrupted:
        kinds = [f"{c.poisoned} poisoned" if c.poisoned else "", f"{c.partial} parts of split frames" if c.partial
                 else ""]  # fmt: skip
        detail = "; ".join(k for k in kinds if k)
        examples = "; ".join(c.corruption)
        if virtio:
            meaning = (
                "poisoned: the driver read a buffer after it had made its chain available again, or before the "
                "device had used it (read before used.idx passed its entry)" if c.poisoned else
                "a part of a frame over several buffers was delivered as a frame (gather num_buffers used entries, "
                "MRG_RXBUF 5.1.6.4)" if c.partial else
                "wrong length or buffer (len counts the 12-byte virtio_net_hdr before the frame), a buffer read "
                "before its used entry was published, or one read after its chain was made available again"
            )  # fmt: skip
        else:
            meaning = (
                "poisoned: the driver read a buffer it had handed back to the device, or one before its DD was set "
                "(use after recycle, read before DD)" if c.poisoned else
                "a part of a frame over several descriptors was delivered as a frame (gather until EOP)" if c.partial
                else "wrong length or buffer, a buffer read before DD was set, or one reused after it was handed back"
            )  # fmt: skip
        out.append(Finding(
            "corrupted", f"{c.corrupted} deliveries match no stored frame" + (f" ({detail})" if detail else "")
            + (f" -- {examples}" if examples else ""), meaning,
        ))  # fmt: skip
    fault_meaning = VIRTIO_FAULT_MEANING if virtio else MEANING
    for kind, acct in c.faults.items():
        if acct.get("misdelivered"):
            out.append(Finding(
                f"fault-{kind}", f"{acct['misdelivered']} misdelivered of {acct['injected']} injected {kind} faults",
                fault_meaning.get(kind, ""),
            ))  # fmt: skip
    violations = VIRTIO_RING_VIOLATIONS if virtio else RING_VIOLATIONS
    for kind, found in c.ring_violations.items():
        what, meaning = violations.get(kind, (kind, ""))
        first = found.get("first", {})
        where = ", ".join(
            f"{_where_label(kind, k) if virtio else k} {first[k]}"
            for k in ("packet", "descriptor", "rdt") if first.get(k) is not None
        )  # fmt: skip
        out.append(Finding(f"ring-{kind}", f"{found['count']} × {what} (first: {where})", meaning))
    if c.delivered_with_error:
        out.append(Finding(
            "error-delivered", f"{c.delivered_with_error} frames delivered although their descriptor had an error bit",
            "a frame with RXE/CE/SE/SEQ/CXE set must be dropped and counted (SDM 3.2.3)",
        ))  # fmt: skip
    if c.errors_by_statistics:
        pass  # the driver collected its drops from CRCERRS/RXERRC (SDM 13.6), as Linux's e1000 does
    elif c.rx_errors is None:
        if c.error_descriptors:
            out.append(Finding(
                "rx-errors-not-kept", f"{c.error_descriptors} error descriptors, but the driver keeps no rx_errors",
                "count dropped frames in self.rx_errors (Python) or nic->rx_errors (C), or read CRCERRS and RXERRC",
            ))  # fmt: skip
    elif not c.error_descriptors <= c.rx_errors <= c.error_descriptors + c.split_dropped and c.failure is None:
        out.append(Finding(
            "rx-errors-miscounted", f"rx_errors is {c.rx_errors}, but {c.error_descriptors} frames carried "
            "frame errors" + (f" (and {c.split_dropped} split frames were dropped whole)" if c.split_dropped else ""),
            "the driver miscounts its drops (each frame with a frame error is one drop)",
        ))  # fmt: skip
    if c.receiver_off:
        out.append(Finding(
            "receiver-off", f"{c.receiver_off} frames arrived with the receiver off (RCTL.EN clear) and were ignored",
            "set RCTL.EN once the ring is ready (a driver that writes RCTL writes all of it: EN included)",
        ))  # fmt: skip
    if c.discarded_long:
        out.append(Finding(
            "long-discarded", f"{c.discarded_long} frames longer than 1518 B discarded by the device (ROC)",
            "RCTL.LPE is clear: long packets are off, and the traffic had them; set LPE (and a BSIZE that holds "
            "them, or gather frames over several descriptors)",
        ))  # fmt: skip
    if c.unmodelled:
        what = f"{c.unmodelled} writes to registers the model does not have (the first at {c.unmodelled_first:#06x})"
        out.append(Finding(
            "unmodelled-register", what,
            "the model has the registers layout.REGISTERS names (the rings, receive and transmit, their statistics, "
            "and the set-up registers whose writes change nothing here: MTA, RADV, TADV, flow control, VET)",
            fails=c.sanitized,
        ))  # fmt: skip
    # On virtio-net the end state says only that nothing was available: with used entries still waiting the
    # chains are in the used ring, not held by the driver (that is `undelivered` and why, above).
    if c.missed and c.starved and c.rdt_written and not (virtio and undelivered > 0):
        out.append(Finding(
            "ring-starved", f"{c.missed} packets dropped by the device while the driver held every chain, took "
            "every used entry, and made none available again (avail.idx = the device's last_avail when the run "
            "ended)" if virtio else
            f"{c.missed} packets dropped by the device while the driver held every descriptor, "
            "cleaned, and handed none back (RDT = RDH when the run ended)",
            "the driver took chains and never made them available again: put each head taken back in the "
            "available ring and publish avail.idx (VIRTIO 1.1 2.6.13)" if virtio else
            "descriptors taken but never returned: RDT written to next_to_clean instead of next_to_clean - 1, "
            "or not written after cleaning",
        ))  # fmt: skip
    elif c.missed:
        share = c.missed / c.packets if c.packets else 0.0
        why = "no chain available" if virtio else "MPC"
        what = f"{c.missed} of {c.packets} packets ({100 * share:.2f} %) dropped by the device ({why})"
        if max_missed is not None and not max_missed.allows(c.missed, c.packets):
            out.append(Finding("missed", f"{what}, over --max-missed {max_missed}",
                               "the driver was too slow for this pace"))  # fmt: skip
        else:
            out.append(Finding("missed", what, "the driver was too slow for this pace; not a failure "
                               "without --max-missed", fails=False))  # fmt: skip
    if c.transmit is not None:
        out += _transmit_findings(c.transmit, c.failure is None)
    if not c.verified:
        out.append(Finding("not-verified", "deliveries counted, not verified (upper layer null)", fails=False))
    return Verdict(passed=not any(f.fails for f in out), findings=tuple(out), interrupted_by=interrupted_by)


def _transmit_findings(t: dict[str, Any], ran_out: bool) -> list[Finding]:
    """What went wrong on the transmit side (pseudonic.transmit.account), each with what it usually means."""
    out: list[Finding] = []
    first = t.get("first", {})

    def at(what: str) -> str:
        return f" (first: frame {first[what]})" if what in first else ""

    left = t["asked"] - t["handed"]
    if not t.get("transmitter_on", True) and (t["lost"] or left):
        return [Finding(
            "tx-off", f"the transmitter was off (TCTL.EN clear): {t['lost']} frames queued were never sent"
            + (f", and {left} more never handed over" if left else ""),
            "set TCTL.EN once the transmit ring is programmed (SDM 14.5); a driver that writes TCTL writes all of "
            "it, EN included",
        )]  # fmt: skip
    if t["lost"]:
        out.append(Finding(
            "tx-lost", f"{t['lost']} of {t['handed']} frames the driver's transmit accepted never reached the wire"
            + at("lost"),
            "the frame was put in a descriptor the device never owned: TDT not moved past it, or the descriptor "
            "overwritten before the device took it (a ring index that skips or wraps wrong)",
        ))  # fmt: skip
    if t["duplicated"]:
        out.append(Finding(
            "tx-duplicated", f"{t['duplicated']} frames sent more than once" + at("duplicated"),
            "TDT moved over descriptors already sent: the ring index not advanced, or a descriptor queued again "
            "before its DD was seen",
        ))  # fmt: skip
    if t["reordered"]:
        out.append(Finding(
            "tx-reordered", f"{t['reordered']} frames sent out of order" + at("reordered"),
            "descriptors filled out of ring order, or TDT moved back and forth",
        ))  # fmt: skip
    if t["corrupted"]:
        out.append(Finding(
            "tx-corrupted", f"{t['corrupted']} frames sent were not the frame handed" + at("corrupted"),
            "a buffer reused before the device took it (freed when queued, not when DD came back), a wrong "
            "length or address, or the frame not copied whole",
        ))  # fmt: skip
    if t["unfinished"]:
        out.append(Finding(
            "tx-no-eop", f"{t['unfinished']} frames queued whose descriptors ran out without EOP",
            "set CMD.EOP on the last descriptor of every frame (SDM 3.3.3): without it the device waits for the "
            "rest of the frame",
        ))  # fmt: skip
    if t["no_fcs"]:
        out.append(Finding(
            "tx-no-fcs", f"{t['no_fcs']} frames sent without CMD.IFCS: no FCS on the wire",
            "a receiver drops a frame without its FCS; set IFCS on every frame's descriptors (Linux e1000 does)",
        ))  # fmt: skip
    if left > 0 and ran_out:
        out.append(Finding(
            "tx-stalled", f"{left} of {t['asked']} frames could never be handed over: the driver's transmit kept "
            f"refusing them ({t['refused']} refusals) and its ring never drained",
            "the transmitter never took what was queued (TCTL.EN clear, TDT never written) or the driver never "
            "reclaimed sent descriptors (RS not set, or DD not checked before a descriptor is reused)",
        ))  # fmt: skip
    return out


def _where_label(kind: str, key: str) -> str:
    """A virtio sanitizer finding's first occurrence, in the queue's words: which head, at which avail.idx."""
    if key == "rdt":
        return "avail.idx"
    if key == "descriptor":
        return "from" if kind == "avail-overrun" else "head" if kind == "buffer-reused" else "descriptor"
    return key


def _signed16(x: int) -> int:
    """A 16-bit index difference as the nearer way round (-32768..32767)."""
    x &= 0xFFFF
    return x - 0x10000 if x & 0x8000 else x


def _virtio_delivery(c: Counts, undelivered: int, good: int) -> list[Finding]:
    """virtio-net: nothing made available, frames left in the used ring, and -- read from the queue as the run
    left it -- why the driver was not told of them (VIRTIO 1.1 2.6.7)."""
    if c.packets and c.stored == 0 and not c.rdt_written:
        return [Finding(
            "avail-never-published", f"the device had no chain for any of {c.packets} packets",
            "the driver never made a chain available: publish avail.idx in open (nic.publish_avail(n), "
            "pnic_vq_avail_publish in C; VIRTIO 1.1 2.6.13)",
        )]  # fmt: skip
    if undelivered <= 0 or c.failure is not None:
        return []
    out = [Finding(
        "undelivered", f"{undelivered} of {good} stored frames never delivered",
        "their buffers were read after their chains were made available again, or before the device used them: "
        "the poisoned deliveries" if c.poisoned else
        "used entries left in the used ring: the handler stopped early, or re-armed (used_event / NO_INTERRUPT) "
        "without looking at used.idx again (VIRTIO 1.1 2.6.7.2)" if c.handler_runs else
        "the driver's handler never ran",
    )]  # fmt: skip
    q = c.queue
    # Only where the entries left behind may all have gone unannounced (the device counts each used entry its
    # interrupt policy kept quiet): a driver told of them by an interrupt lost them some other way.
    if c.poisoned or c.corrupted or not q or int(q.get("quiet", 0)) < undelivered:
        return out
    event_idx = int(q.get("features", 0)) >> VIRTIO_RING_F_EVENT_IDX & 1
    if not event_idx and int(q.get("avail_flags", 0)) & VIRTQ_AVAIL_F_NO_INTERRUPT:
        out.append(Finding(
            "interrupt-suppressed", f"the run ended with VIRTQ_AVAIL_F_NO_INTERRUPT set, {undelivered} used "
            f"entries never taken and {q['quiet']} announced by no interrupt (EVENT_IDX not negotiated)",
            "the driver suppressed interrupts and then waited for one: clear VIRTQ_AVAIL_F_NO_INTERRUPT, then look "
            "at used.idx once more before waiting (VIRTIO 1.1 2.6.7.1)",
        ))  # fmt: skip
    elif event_idx and not c.faults.get("split", {}).get("injected"):
        # One used entry per frame here (no frame was split over several buffers): the driver had taken every
        # entry but the last `undelivered`, so the first it had not taken -- where used_event belongs -- is:
        used_idx, used_event = int(q.get("used_idx", 0)), int(q.get("used_event", 0))
        last_used = (used_idx - undelivered) & 0xFFFF
        off = _signed16(used_event - last_used)
        if off:
            how = {1: "one past", -1: "one before"}.get(off, f"{abs(off)} {'past' if off > 0 else 'before'}")
            out.append(Finding(
                "event-idx", f"used_event is {used_event} when the run ended, {how} the first used entry the "
                f"driver had not taken ({last_used}; used.idx {used_idx}, {undelivered} left)",
                "used_event must be the index of the next used entry the driver will take (its last_used), not one "
                "past or one before: need_event then never fires for that entry (VIRTIO 1.1 2.6.7.2)",
            ))  # fmt: skip
    return out


def failure_text(e: dict[str, Any]) -> str:
    """What failed, where, and in which stage, handler run and packet: one line for a summary."""
    where = f" at {e['where']}" if e.get("where") else ""
    what = f"{e['exception']}: {e.get('message', '')}" if e.get("exception") else str(e.get("message", ""))
    run = f" handler run {e['handler_run']}" if e.get("handler_run") else ""
    last = f", last packet {e['last_packet']}" if e.get("last_packet") is not None else ""
    ctx = f" ({e.get('stage', '?')}{',' if run else ''}{run}{last})"
    return f"{what}{where}{ctx}"
