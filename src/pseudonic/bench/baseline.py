"""The kernel's own UDP receive path as a baseline: the "real NIC" row of the paper's Table 2.

Two network namespaces joined by a veth pair stand in for two hosts on a wire. A sender pinned
to one core sends MTU-sized UDP datagrams at absolute deadlines ``t0 + k * interval`` (the same
pacing as the pseudo-NIC engine); a receiver pinned to another core counts what arrives. The
interval search is the one the sweep uses (:func:`pseudonic.bench.search.search_intervals`), so
the two rows of the table are measured the same way.

What is measured is the receiver, so the sender must be able to outrun it. A UDP socket cannot: its
send path (socket, route and neighbour lookup, building the headers, a syscall a datagram) costs about
what the receive path does. So the sender skips its own stack: it sends prebuilt frames (Ethernet,
IPv4 with a correct header checksum, UDP with checksum 0, which IPv4 allows; :func:`udp_frame`) on an
AF_PACKET socket bound to the sending veth, which hands each frame to the veth as it is, and when it
falls behind the pace it sends everything due in one ``sendmmsg`` (up to 64). That is fair because
nothing on the receiving side changes: the veth delivers the same frame a UDP sender's stack would have
built (a UDP socket over veth leaves the checksum to the "hardware", so the receiver verifies none
either way), and the receive core does the same IP and UDP work, the same socket lookup and enqueue. A
frame the veth refuses (the receive core's backlog is full) counts as sent and lost, as a UDP sender's
datagram would; it is not resent. Without CAP_NET_RAW the sender falls back to a UDP socket and the
note says so. Each datagram carries a sequence number from a range drawn afresh for each run, and the
receiver counts only its own run's.

The receive socket's buffer is sized to queue about as many datagrams as the pseudo-NIC's default
ring has descriptors (256): a buffer that holds a whole run would turn "the receiver took every
datagram" into "the queue held them all", and an equal queue depth makes the two rows compare like for
like. As in the sweep, each interval is one run, and its success rate is what it took: a stall of the
receiver's core shows as a loss here exactly as it does there.
Which of the two limited the result is judged from the measured intervals (:func:`what_limited`)
and said in the note.

Namespaces are named ``pseudonic-<pid>-<hex>-rx`` / ``-tx`` so that leftovers of a killed run can
be told apart and swept (:func:`sweep_stale_namespaces`). The veth pair is created inside them and
never exists in the root namespace, so removing both namespaces removes it too.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.machinery
import multiprocessing
import os
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkProcess
from pathlib import Path
from typing import Any

from pseudonic.bench.search import Point, search_intervals
from pseudonic.frames import ipv4_udp_frame
from pseudonic.node import pid_alive

NETNS_PREFIX = "pseudonic-"
#: one /30 of RFC 5737 TEST-NET-1: never routed, cannot collide with a real network
RX_ADDR, TX_ADDR, PREFIXLEN = "192.0.2.1", "192.0.2.2", 30
PORT = 9  # discard
#: the frames' UDP source port (no socket has it: nothing sends from it but the raw sender)
TX_PORT = 49152
MTU = 1500
ETH_HEADER = 14
IP_UDP_HEADERS = 20 + 8
#: where the sequence number sits in a frame: the first 4 bytes of the UDP payload, where pnb_recv reads it
SEQ_OFFSET = ETH_HEADER + IP_UDP_HEADERS
#: the receive socket's SO_RCVBUF: room for about 256 datagrams of 1500 B, the depth of the pseudo-NIC's
#: default ring. The kernel charges a datagram's truesize (~2.3 KB for 1500 B over veth) and doubles the
#: value set (socket(7)); None would keep the kernel's default (net.core.rmem_default)
RCVBUF_BYTES: int | None = 256 * 2304 // 2
#: the sender's pace counts as kept when its mean interval is within this factor of the one asked for
PACE_TOLERANCE = 1.1
#: runs at one interval; the median counts, as in the sweep (pseudonic.bench.evaluations.RUNS)
RUNS = 3
#: the receiver gives up on a batch after this long without a datagram, then asks whether the sender is done
IDLE_TIMEOUT_NS = 20_000_000
#: how long a child may take to get ready (setns, pin, bind) or to report, beyond the sends themselves
CHILD_TIMEOUT_S = 10.0
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
CLONE_NEWNS, MS_REC, MS_PRIVATE = 0x20000, 0x4000, 0x40000


@dataclass(frozen=True)
class _Shot:
    """One measurement: ``count`` datagrams at one interval."""

    interval_ns: int
    count: int
    sent: int
    received: int
    received_bytes: int
    duration_ns: int
    size: int
    #: the sender's send/sendmmsg calls, how many of them were sendmmsg, and the most datagrams one call sent
    syscalls: int = 0
    batch_calls: int = 0
    max_batch: int = 0
    #: the receive socket's SO_RCVBUF as getsockopt reports it
    rcvbuf: int = 0
    #: frames the sending veth refused (its peer's backlog was full): counted as sent and lost
    refused: int = 0
    #: datagrams the receiver read that were not of this run (sequence number out of range): not counted
    stray: int = 0
    #: how it was sent: "raw" (whole frames on an AF_PACKET socket) or "udp" (the fallback, a UDP socket)
    sender: str = "raw"
    #: why the sender fell back to a UDP socket, None when it did not
    fallback: str | None = None

    @property
    def achieved_ns(self) -> float:
        """The mean time per send: above ``interval_ns`` when the sender could not keep the pace."""
        return self.duration_ns / self.count

    @property
    def success_rate(self) -> float:
        return self.received / self.count

    @property
    def point(self) -> Point:
        return Point(self.interval_ns, self.received / self.count, self.received * self.size * 8 / self.duration_ns)

    @property
    def pps(self) -> float:
        return self.received * 1e9 / self.duration_ns


# --- the C sender/receiver -------------------------------------------------------------------------------------


class _SendStats(ctypes.Structure):
    """``struct pnb_send_stats`` in udp_blast.c."""

    _fields_ = [
        ("start_ns", ctypes.c_uint64),
        ("end_ns", ctypes.c_uint64),
        ("syscalls", ctypes.c_uint64),
        ("batch_calls", ctypes.c_uint64),
        ("max_batch", ctypes.c_uint64),
        ("refused", ctypes.c_uint64),
    ]


def _library_path() -> Path:
    here = Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = here / ("_udp_blast" + suffix)
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"the baseline's C library _udp_blast{importlib.machinery.EXTENSION_SUFFIXES[0]} is not in {here}: "
        "install the package (pip install .) or build it from src/pseudonic/bench/udp_blast.c"
    )


@functools.cache
def _library() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(_library_path()))
    u64p = ctypes.POINTER(ctypes.c_uint64)
    # pnb_send(fd, buf, len, seq_off, first_seq, count, interval_ns, stats)
    lib.pnb_send.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint32,
        ctypes.c_uint32,
        ctypes.c_uint32,
        ctypes.c_uint32,
        ctypes.c_uint64,
        ctypes.POINTER(_SendStats),
    ]
    lib.pnb_send.restype = ctypes.c_int
    # pnb_recv(fd, count, first_seq, span, idle_timeout_ns, bytes, stray)
    lib.pnb_recv.argtypes = [
        ctypes.c_int,
        ctypes.c_uint32,
        ctypes.c_uint32,
        ctypes.c_uint32,
        ctypes.c_uint64,
        u64p,
        u64p,
    ]
    lib.pnb_recv.restype = ctypes.c_int64
    return lib


# --- the frame ---------------------------------------------------------------------------------------------------


def udp_frame(
    size: int,
    *,
    src_mac: str,
    dst_mac: str,
    src_ip: str = TX_ADDR,
    dst_ip: str = RX_ADDR,
    sport: int = TX_PORT,
    dport: int = PORT,
) -> bytes:
    """A complete Ethernet II / IPv4 / UDP frame whose IP packet is ``size`` bytes, with a zero payload.

    What the sender's own stack would have built: IPv4 without options, DF set, id 0, TTL 64, a correct
    header checksum (the receiving kernel drops a frame without one); UDP checksum 0, "no checksum",
    which IPv4 allows (RFC 768), so the receiver verifies none, as it verifies none for a datagram sent
    through a veth by a UDP socket (the checksum is left to the "hardware"). The sequence number goes in
    the first 4 payload bytes, at :data:`SEQ_OFFSET`.
    """
    if not IP_UDP_HEADERS + 4 <= size <= MTU:
        raise ValueError(f"size must be {IP_UDP_HEADERS + 4}..{MTU} B, got {size}")
    return ipv4_udp_frame(bytes(size - IP_UDP_HEADERS), src_mac=src_mac, dst_mac=dst_mac, src_ip=src_ip,
                          dst_ip=dst_ip, sport=sport, dport=dport, udp_checksum=False)  # fmt: skip


# --- namespaces ------------------------------------------------------------------------------------------------


def _netns() -> Any:
    from pyroute2 import netns  # imported late: baseline_available() must answer even without it

    return netns


def _pid_of(name: str) -> int | None:
    parts = name.split("-")
    if len(parts) < 3 or not name.startswith(NETNS_PREFIX) or not parts[1].isdigit():
        return None
    return int(parts[1])


def our_namespaces() -> list[str]:
    """The ``pseudonic-*`` network namespaces that exist now, whoever made them."""
    return sorted(n for n in _netns().listnetns() if n.startswith(NETNS_PREFIX) and _pid_of(n) is not None)


def sweep_stale_namespaces() -> list[str]:
    """Remove ``pseudonic-<pid>-*`` namespaces whose process is gone (a killed run); return their names."""
    removed = []
    for name in our_namespaces():
        pid = _pid_of(name)
        if pid is not None and not pid_alive(pid):
            _netns().remove(name)
            removed.append(name)
    return removed


@dataclass(frozen=True)
class _Pair:
    rx_ns: str
    tx_ns: str
    rx_if: str
    tx_if: str
    rx_mac: str
    tx_mac: str


def _configure(ipr: Any, ifname: str, address: str, peer_address: str, peer_mac: str) -> None:
    (lo,) = ipr.link_lookup(ifname="lo")
    (idx,) = ipr.link_lookup(ifname=ifname)
    ipr.link("set", index=lo, state="up")
    ipr.link("set", index=idx, mtu=MTU, state="up")
    ipr.addr("add", index=idx, address=address, prefixlen=PREFIXLEN)
    # A permanent neighbour entry: otherwise the first burst waits on ARP and the kernel
    # drops all but a few queued datagrams, which would be charged to the receive path.
    ipr.neigh("add", dst=peer_address, lladdr=peer_mac, ifindex=idx, state="permanent")


def _remove_namespaces(names: list[str]) -> None:
    errors = []
    for name in names:
        try:
            _netns().remove(name)
        except FileNotFoundError:
            pass
        except OSError as e:
            errors.append(f"{name}: {e}")
    if errors:
        raise RuntimeError("could not remove network namespaces: " + "; ".join(errors))


def _create_pair() -> _Pair:
    """Two namespaces joined by a veth pair; on failure, nothing of it is left behind."""
    from pyroute2 import IPRoute

    token = secrets.token_hex(3)
    base = f"{NETNS_PREFIX}{os.getpid()}-{token}"
    rx_if, tx_if = f"pnb{token}rx", f"pnb{token}tx"
    names = {"rx_ns": base + "-rx", "tx_ns": base + "-tx"}
    created: list[str] = []
    # Both ends get their addresses when they are made (locally administered, unicast): asking the
    # kernel for them afterwards raced with the peer's move into its namespace (seen with pyroute2 0.9).
    octets = ":".join(token[i : i + 2] for i in range(0, 6, 2))
    rx_mac, tx_mac = f"02:70:6e:{octets}", f"06:70:6e:{octets}"
    try:
        for name in names.values():
            _netns().create(name)
            created.append(name)
        tx_fd = os.open(f"/var/run/netns/{names['tx_ns']}", os.O_RDONLY)
        try:
            with IPRoute(netns=names["rx_ns"]) as ipr:
                # Created in rx with its peer straight in tx: the pair never appears in the root namespace,
                # and goes with the namespaces.
                ipr.link(
                    "add", ifname=rx_if, address=rx_mac, kind="veth",
                    peer={"ifname": tx_if, "address": tx_mac, "net_ns_fd": tx_fd},
                )  # fmt: skip
        finally:
            os.close(tx_fd)
        with IPRoute(netns=names["tx_ns"]) as ipr:
            _configure(ipr, tx_if, TX_ADDR, RX_ADDR, rx_mac)
        with IPRoute(netns=names["rx_ns"]) as ipr:
            _configure(ipr, rx_if, RX_ADDR, TX_ADDR, tx_mac)
    except BaseException:
        _remove_namespaces(created)
        raise
    return _Pair(rx_if=rx_if, tx_if=tx_if, rx_mac=rx_mac, tx_mac=tx_mac, **names)


def _cpu_mask(core: int) -> str:
    """The kernel's bitmap syntax: hex in comma-separated 32-bit groups."""
    digits = f"{1 << core:x}"
    groups = [digits[max(0, i - 8) : i] for i in range(len(digits), 0, -8)]
    return ",".join(reversed(groups))


def _steer_rps(ns: str, ifname: str, core: int, conn: Connection) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        _netns().setns(ns, flags=0)
        # /sys shows the namespace of whoever mounted it: mount a fresh one in a private mount
        # namespace of this short-lived process, so the root's /sys is never touched.
        for rc in (
            libc.unshare(CLONE_NEWNS),
            libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None),
            libc.mount(b"sysfs", b"/sys", b"sysfs", 0, None),
        ):
            if rc != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
        Path(f"/sys/class/net/{ifname}/queues/rx-0/rps_cpus").write_text(_cpu_mask(core))
        conn.send(("steered",))
    except BaseException as e:
        conn.send(("error", f"{e}"))
        raise


def steer_receive(pair: _Pair, core: int) -> str | None:
    """Run the receiver's kernel receive work (IP, UDP, socket enqueue) on ``core`` by RPS; None or why not.

    Without it veth does that work in the sender's softirq, on the sender core, unlike two hosts on a wire.
    """
    ctx = multiprocessing.get_context("fork")
    conn, child = ctx.Pipe()
    proc = ctx.Process(target=_steer_rps, args=(pair.rx_ns, pair.rx_if, core, child), name="baseline-rps")
    proc.start()
    try:
        _expect(conn, proc, "steered", CHILD_TIMEOUT_S)
        return None
    except RuntimeError as e:
        return str(e)
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        proc.close()
        conn.close()
        child.close()


# --- the two children --------------------------------------------------------------------------------------------


def _enter(ns: str, core: int) -> None:
    _netns().setns(ns, flags=0)  # flags=0: never create it by accident
    os.sched_setaffinity(0, {core})


def _receiver(ns: str, core: int, count: int, first_seq: int, conn: Connection) -> None:
    try:
        _enter(ns, core)
        lib = _library()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            if RCVBUF_BYTES is not None:
                try:
                    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF_BYTES)
                except PermissionError:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
            s.bind((RX_ADDR, PORT))
            conn.send(("ready", s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)))
            received = received_bytes = stray = 0
            sender_done = False
            nbytes, nstray = ctypes.c_uint64(), ctypes.c_uint64()
            while received < count:
                # Only this run's datagrams count: sequence numbers first_seq .. first_seq + count - 1.
                n = int(
                    lib.pnb_recv(
                        s.fileno(),
                        count - received,
                        first_seq,
                        count,
                        IDLE_TIMEOUT_NS,
                        ctypes.byref(nbytes),
                        ctypes.byref(nstray),
                    )
                )
                if n < 0:
                    raise OSError(-n, os.strerror(-n))
                received += n
                received_bytes += nbytes.value
                stray += nstray.value
                if n == 0:
                    # A full idle period after the sender finished: nothing more is on its way.
                    if sender_done:
                        break
                    if conn.poll():
                        conn.recv()
                        sender_done = True
            conn.send(("received", received, received_bytes, stray))
    except BaseException as e:
        conn.send(("error", f"receiver: {e!r}"))
        raise


def _sender(
    ns: str, core: int, count: int, interval_ns: int, frame: bytes, first_seq: int, tx_if: str, conn: Connection
) -> None:
    """Send ``count`` copies of ``frame`` on an AF_PACKET socket bound to ``tx_if``; a UDP socket if that is refused.

    The frame is complete (Ethernet, IPv4, UDP: :func:`udp_frame`): the kernel passes it to the veth as it is,
    without the sender's UDP/IP stack. Without CAP_NET_RAW (or AF_PACKET) the UDP payload goes on a
    connected UDP socket instead, through the whole stack, and the "sent" message says so.
    """
    try:
        _enter(ns, core)
        lib = _library()
        st = _SendStats()
        kind, why, buf, seq_off = "raw", None, frame, SEQ_OFFSET
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the fallback, replaced when AF_PACKET works
        try:
            raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: it sends, it is handed nothing
        except OSError as e:  # no CAP_NET_RAW (EPERM), or no AF_PACKET in this kernel
            kind, why, buf, seq_off = "udp", f"no AF_PACKET socket: {e}", frame[SEQ_OFFSET:], 0
            s.connect((RX_ADDR, PORT))
        else:
            s.close()
            s = raw
        with s:
            if kind == "raw":
                s.bind((tx_if, 0))  # frames go out on this device, as they are: no msg_name needed
            n = int(lib.pnb_send(s.fileno(), buf, len(buf), seq_off, first_seq, count, interval_ns, ctypes.byref(st)))
        if n < 0:
            raise OSError(-n, os.strerror(-n))
        conn.send(("sent", n, st.start_ns, st.end_ns, st.syscalls, st.batch_calls, st.max_batch, st.refused, kind, why))
    except BaseException as e:
        conn.send(("error", f"sender: {e!r}"))
        raise


def _expect(conn: Connection, proc: ForkProcess, kind: str, timeout_s: float) -> tuple[Any, ...]:
    """The child's next message, which must be ``kind``; a dead or silent child is an error, not a hang."""
    ready = wait([conn, proc.sentinel], timeout_s)
    if not conn.poll():
        if not ready:
            raise RuntimeError(f"{proc.name} is silent after {timeout_s:.0f} s, waiting for {kind!r}")
        proc.join(CHILD_TIMEOUT_S)  # its sentinel fires on exit, a moment before it can be reaped
        raise RuntimeError(f"{proc.name} died (exit code {proc.exitcode}) before sending {kind!r}")
    msg: tuple[Any, ...] = conn.recv()
    if msg[0] != kind:
        raise RuntimeError(f"{proc.name}: {msg[1] if msg[0] == 'error' else msg!r}")
    return msg


def _measure_once(pair: _Pair, size: int, count: int, interval_ns: int, sender_core: int, receiver_core: int) -> _Shot:
    ctx = multiprocessing.get_context("fork")
    frame = udp_frame(size, src_mac=pair.tx_mac, dst_mac=pair.rx_mac)
    # A fresh range of sequence numbers each run: a late datagram of an earlier run is not counted in this one.
    first_seq = secrets.randbits(32)
    rx_conn, rx_child = ctx.Pipe()
    tx_conn, tx_child = ctx.Pipe()
    rx = ctx.Process(
        target=_receiver,
        args=(pair.rx_ns, receiver_core, count, first_seq, rx_child),
        name="baseline-receiver",
        daemon=True,
    )
    tx = ctx.Process(
        target=_sender,
        args=(pair.tx_ns, sender_core, count, interval_ns, frame, first_seq, pair.tx_if, tx_child),
        name="baseline-sender",
        daemon=True,
    )
    started: list[ForkProcess] = []
    try:
        rx.start()
        started.append(rx)
        _, rcvbuf = _expect(rx_conn, rx, "ready", CHILD_TIMEOUT_S)
        tx.start()
        started.append(tx)
        # The sender may fall behind the pace (the send path is slow): allow it 100 µs a datagram more.
        _, sent, start_ns, end_ns, syscalls, batch_calls, max_batch, refused, kind, why = _expect(
            tx_conn, tx, "sent", CHILD_TIMEOUT_S + count * (interval_ns + 100_000) / 1e9
        )
        rx_conn.send("sender done")
        _, received, received_bytes, stray = _expect(rx_conn, rx, "received", CHILD_TIMEOUT_S)
        for p in started:
            p.join(CHILD_TIMEOUT_S)
        if sent != count:
            raise RuntimeError(f"the sender sent {sent} of {count} datagrams")
        return _Shot(
            interval_ns,
            count,
            sent,
            received,
            received_bytes,
            max(1, end_ns - start_ns),
            size,
            syscalls=syscalls,
            batch_calls=batch_calls,
            max_batch=max_batch,
            rcvbuf=rcvbuf,
            refused=refused,
            stray=stray,
            sender=kind,
            fallback=why,
        )
    finally:
        for p in started:
            if p.is_alive():
                p.kill()
            p.join()
            p.close()
        for c in (rx_conn, rx_child, tx_conn, tx_child):
            c.close()


# --- public API --------------------------------------------------------------------------------------------------


def what_limited(shots: Mapping[int, _Shot], best: int | None) -> tuple[str | None, str]:
    """Who limited the result at ``best`` (the shortest fully taken interval), and a note that says why.

    Judged from what was measured, the sender's achieved interval against the one asked for: at
    ``best``, and at the nearest shorter interval, where the receiver dropped datagrams. Returns
    ``"receiver"`` when the sender sent faster there than at ``best`` (the receiver, not the sender,
    stopped the search), ``"both"`` when the receiver dropped although the sender could go no faster,
    ``"sender"`` when nothing shorter was measured and the sender missed the pace (a lower bound),
    ``"search floor"`` when the sender kept the pace at the shortest interval searched, ``"noise"`` when
    a still shorter interval took everything (the drops were a stall, not a rate), None without ``best``.
    """
    if best is None:
        return None, "no measured interval took every datagram"
    b = shots[best]
    pace = f"asked for {best} ns, the sends took {b.achieved_ns:.0f} ns each"
    shorter = [i for i in shots if i < best]
    if not shorter:
        if b.achieved_ns > PACE_TOLERANCE * best:
            return "sender", (
                f"sender-bound: {pace} and the receiver took them all, so the figures are a lower bound on the "
                "receive path"
            )
        return (
            "search floor",
            f"even the shortest interval searched took everything ({pace}): the search's floor bounds it",
        )
    f = shots[max(shorter)]
    lost = (
        f"at {f.interval_ns} ns asked the sends took {f.achieved_ns:.0f} ns each and the receiver took only "
        f"{f.received} of {f.count}"
    )
    full_below = [i for i in shorter if shots[i].received == shots[i].count]
    if full_below:
        return "noise", (
            f"not a rate limit: {lost}, but at {max(full_below)} ns, shorter still, it took everything; the "
            f"drops at {f.interval_ns} ns came from a stall, and the figure understates the receive path"
        )
    if f.achieved_ns < b.achieved_ns:
        return "receiver", (
            f"receiver-bound: {lost}, while at {best} ns ({pace}) it took everything, so the receive path's limit "
            f"lies between {1e9 / f.achieved_ns:,.0f} and {1e9 / b.achieved_ns:,.0f} datagrams/s"
        )
    return "both", (
        f"sender and receiver at about the same rate: {lost}, though no faster than at {best} ns ({pace}), where "
        "the receiver took everything; the receiver drops at the sender's top rate, so the figure is the receive "
        "path's limit only to within run-to-run noise"
    )


def _has_capability(bit: int) -> bool:
    """Whether this process holds capability ``bit`` (capabilities(7)), as /proc/self/status says."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> bit & 1)
    except OSError:
        pass
    return False


def baseline_available() -> str | None:
    """None when the baseline can run here, else why not."""
    if os.geteuid() != 0:
        return "the kernel baseline needs root (it creates network namespaces and a veth pair)"
    if not Path("/proc/self/ns/net").exists():
        return "this kernel has no network namespaces (/proc/self/ns/net is missing)"
    missing = [name for name, bit in (("CAP_SYS_ADMIN", 21), ("CAP_NET_ADMIN", 12)) if not _has_capability(bit)]
    if missing:
        return f"root without {' and '.join(missing)} (an unprivileged container?): no namespaces or veth here"
    try:
        _library_path()
        _netns()
    except (FileNotFoundError, ImportError) as e:
        return str(e)
    return None


def measure_baseline(
    size: int = 1500,
    count: int = 5000,
    *,
    intervals: list[int] | None = None,
    lo_ns: int = 200,
    hi_ns: int = 64_000,
    sender_core: int = 0,
    receiver_core: int = 1,
    progress: Callable[[int, Point], None] | None = None,
) -> dict[str, Any]:
    """Search the shortest send interval the kernel's UDP receive path takes completely over a veth pair.

    ``size`` is the IP packet size (UDP payload = size - 28). ``progress(i, point)`` is called after
    the i-th measurement (from 0). Returns ``{"skipped": reason}`` where the baseline cannot run.
    """
    if not IP_UDP_HEADERS + 4 <= size <= MTU:
        raise ValueError(f"size must be {IP_UDP_HEADERS + 4}..{MTU} B (an IP packet within the veth MTU), got {size}")
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    reason = baseline_available()
    if reason is not None:
        return {"skipped": reason}
    cores = os.sched_getaffinity(0)
    notes = []
    if len(cores) < 2:
        (only,) = cores
        sender_core = receiver_core = only
        notes.append(f"only one core ({only}) is available: sender and receiver share it")
    else:
        for role, core in (("sender", sender_core), ("receiver", receiver_core)):
            if core not in cores:
                raise ValueError(f"{role} core {core} is not among the cores this process may use: {sorted(cores)}")
        if sender_core == receiver_core:
            notes.append(f"sender and receiver share core {sender_core}")
    sweep_stale_namespaces()
    try:
        pair = _create_pair()
    except OSError as e:
        return {"skipped": f"cannot set up network namespaces and a veth pair: {e}"}
    shots: dict[int, _Shot] = {}
    success_rates: dict[int, list[float]] = {}

    def measure(interval_ns: int) -> Point:
        # As in the sweep: RUNS runs, the one with the median success rate counts; all are kept.
        runs = [_measure_once(pair, size, count, interval_ns, sender_core, receiver_core) for _ in range(RUNS)]
        runs.sort(key=lambda r: (r.received, -r.duration_ns))
        shot = runs[len(runs) // 2]
        success_rates[interval_ns] = [r.received / count for r in runs]
        if progress is not None:
            progress(len(shots), shot.point)
        shots[interval_ns] = shot
        return shot.point

    try:
        why_not = steer_receive(pair, receiver_core) if receiver_core != sender_core else "one core for both"
        if why_not is None:
            notes.append(f"the receive work (IP, UDP, socket enqueue) steered to core {receiver_core} by RPS")
        else:
            notes.append(f"no RPS ({why_not}): veth does the receive work in the sender's softirq, core {sender_core}")
        result = search_intervals(measure, lo_ns, hi_ns, intervals=intervals)
    finally:
        _remove_namespaces([pair.rx_ns, pair.tx_ns])

    best = result.min_full_success_interval_ns
    achieved = shots[best].achieved_ns if best is not None else None
    fallbacks = sorted({shot.fallback for shot in shots.values() if shot.fallback is not None})
    raw = not fallbacks
    if fallbacks:
        notes.append(
            "the sender fell back to a UDP socket (" + "; ".join(fallbacks) + "): its own UDP/IP send path costs "
            "about what the receive path does, so the result is likely sender-bound"
        )
    limited_by, why = what_limited(shots, best)
    notes.append(why)
    refused = sum(shot.refused for shot in shots.values())
    if refused:
        notes.append(
            f"{refused} frames in all were refused by the sending veth (the receive core's backlog was full): "
            "counted as sent and lost, as a UDP sender's would be"
        )
    stray = sum(shot.stray for shot in shots.values())
    if stray:
        notes.append(f"{stray} datagrams not of their run (sequence number out of range) were read and not counted")
    rcvbuf = next(iter(shots.values())).rcvbuf if shots else None
    buffer = (
        f"the kernel's default receive buffer (SO_RCVBUF not set: {rcvbuf} B as getsockopt reports it)"
        if RCVBUF_BYTES is None
        else f"SO_RCVBUF set to {RCVBUF_BYTES} B ({rcvbuf} B as getsockopt reports it)"
    )
    return {
        "gbps": result.throughput_gbps,
        "pps": shots[best].pps if best is not None else None,
        "min_full_success_interval_ns": best,
        # mean time per send at that interval: above it when the sender could not keep the pace
        "achieved_interval_ns": achieved,
        "size": size,
        "count": count,
        "points": result.curve(),
        # "receiver", "both", "sender" (a lower bound), "search floor" or None: see what_limited
        "limited_by": limited_by,
        "rcvbuf_bytes": rcvbuf,
        # "raw": whole frames on an AF_PACKET socket; "udp": the fallback, a UDP socket (see the note)
        "sender": "raw" if raw else "udp",
        # datagrams read that were not of their run: not counted
        "stray_datagrams": stray,
        # per measured interval: how the sender sent (sendmmsg calls are the ones where it was behind the pace)
        "sender_batches": [
            {
                "interval_ns": i,
                "achieved_interval_ns": shot.achieved_ns,
                "syscalls": shot.syscalls,
                "sendmmsg_calls": shot.batch_calls,
                "max_batch": shot.max_batch,
                "refused": shot.refused,
                "success_rates": success_rates[i],
            }
            for i, shot in sorted(shots.items())
        ],
        "method": (
            f"kernel UDP receive path over a veth pair between two network namespaces; {count} datagrams of "
            f"{size} B IP size (UDP payload {size - IP_UDP_HEADERS} B) sent at t0 + k*interval from core "
            f"{sender_core} "
            + (
                f"as prebuilt Ethernet/IPv4/UDP frames ({size + ETH_HEADER} B; IPv4 header checksum set, UDP "
                "checksum 0, which IPv4 allows) on an AF_PACKET socket bound to the sending veth, so the sender "
                "skips its own UDP/IP stack (socket, routing, neighbour lookup, header building) and the veth takes "
                "the frame as it is, while the receiving side (veth, RPS, IP, UDP, socket) is the one a UDP "
                "sender's datagrams take"
                if raw
                else "on a connected UDP socket (the fallback: no AF_PACKET socket)"
            )
            + f" (one send per deadline on time; when behind, every datagram due, up to 64, in one sendmmsg; "
            "a frame the veth refuses counts as sent and lost), received with recvmmsg on core "
            f"{receiver_core} from {buffer}, counting only the run's own sequence numbers; success = received/count, "
            + f"{RUNS} runs per interval, the median counts, as in the sweep; "
            + f"Gbps = received x {size} B x 8 / (first send start to last send end)"
        ),
        "note": "; ".join(notes),
    }
