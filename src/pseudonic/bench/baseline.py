"""The kernel's own UDP receive path as a baseline: the "real NIC" row of the paper's Table 2.

Two network namespaces joined by a veth pair stand in for two hosts on a wire. A sender pinned
to one core sends MTU-sized UDP datagrams at absolute deadlines ``t0 + k * interval`` (the same
pacing as the pseudo-NIC engine); a receiver pinned to another core counts what arrives. The
interval search is the one the sweep uses (:func:`pseudonic.bench.search.search_intervals`), so
the two rows of the table are measured the same way.

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
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkProcess
from pathlib import Path
from typing import Any

from pseudonic.bench.search import Point, search_intervals

NETNS_PREFIX = "pseudonic-"
#: one /30 of RFC 5737 TEST-NET-1: never routed, cannot collide with a real network
RX_ADDR, TX_ADDR, PREFIXLEN = "192.0.2.1", "192.0.2.2", 30
PORT = 9  # discard
MTU = 1500
IP_UDP_HEADERS = 20 + 8
RCVBUF_BYTES = 8 << 20
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

    @property
    def point(self) -> Point:
        return Point(self.interval_ns, self.received / self.count, self.received * self.size * 8 / self.duration_ns)

    @property
    def pps(self) -> float:
        return self.received * 1e9 / self.duration_ns


# --- the C sender/receiver -------------------------------------------------------------------------------------


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
    lib.pnb_send.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint32,
        ctypes.c_uint32,
        ctypes.c_uint64,
        u64p,
        u64p,
    ]
    lib.pnb_send.restype = ctypes.c_int
    lib.pnb_recv.argtypes = [ctypes.c_int, ctypes.c_uint32, ctypes.c_uint64, u64p]
    lib.pnb_recv.restype = ctypes.c_int64
    return lib


# --- namespaces ------------------------------------------------------------------------------------------------


def _netns() -> Any:
    from pyroute2 import netns  # imported late: baseline_available() must answer even without it

    return netns


def _pid_of(name: str) -> int | None:
    parts = name.split("-")
    if len(parts) < 3 or not name.startswith(NETNS_PREFIX) or not parts[1].isdigit():
        return None
    return int(parts[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def our_namespaces() -> list[str]:
    """The ``pseudonic-*`` network namespaces that exist now, whoever made them."""
    return sorted(n for n in _netns().listnetns() if n.startswith(NETNS_PREFIX) and _pid_of(n) is not None)


def sweep_stale_namespaces() -> list[str]:
    """Remove ``pseudonic-<pid>-*`` namespaces whose process is gone (a killed run); return their names."""
    removed = []
    for name in our_namespaces():
        pid = _pid_of(name)
        if pid is not None and not _alive(pid):
            _netns().remove(name)
            removed.append(name)
    return removed


@dataclass(frozen=True)
class _Pair:
    rx_ns: str
    tx_ns: str
    rx_if: str


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
    pair = _Pair(rx_ns=base + "-rx", tx_ns=base + "-tx", rx_if=rx_if)
    created: list[str] = []
    try:
        for name in (pair.rx_ns, pair.tx_ns):
            _netns().create(name)
            created.append(name)
        tx_fd = os.open(f"/var/run/netns/{pair.tx_ns}", os.O_RDONLY)
        try:
            with IPRoute(netns=pair.rx_ns) as ipr:
                # Created in rx with its peer straight in tx: the pair never appears in the root namespace,
                # and goes with the namespaces.
                ipr.link("add", ifname=rx_if, kind="veth", peer={"ifname": tx_if, "net_ns_fd": tx_fd})
                rx_mac = ipr.get_links(ifname=rx_if)[0].get("address")
        finally:
            os.close(tx_fd)
        with IPRoute(netns=pair.tx_ns) as ipr:
            tx_mac = ipr.get_links(ifname=tx_if)[0].get("address")
            _configure(ipr, tx_if, TX_ADDR, RX_ADDR, rx_mac)
        with IPRoute(netns=pair.rx_ns) as ipr:
            _configure(ipr, rx_if, RX_ADDR, TX_ADDR, tx_mac)
    except BaseException:
        _remove_namespaces(created)
        raise
    return pair


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


def _receiver(ns: str, core: int, count: int, conn: Connection) -> None:
    try:
        _enter(ns, core)
        lib = _library()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF_BYTES)
            except PermissionError:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
            s.bind((RX_ADDR, PORT))
            conn.send(("ready", s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)))
            received = received_bytes = 0
            sender_done = False
            nbytes = ctypes.c_uint64()
            while received < count:
                n = int(lib.pnb_recv(s.fileno(), count - received, IDLE_TIMEOUT_NS, ctypes.byref(nbytes)))
                if n < 0:
                    raise OSError(-n, os.strerror(-n))
                received += n
                received_bytes += nbytes.value
                if n == 0:
                    # A full idle period after the sender finished: nothing more is on its way.
                    if sender_done:
                        break
                    if conn.poll():
                        conn.recv()
                        sender_done = True
            conn.send(("received", received, received_bytes))
    except BaseException as e:
        conn.send(("error", f"receiver: {e!r}"))
        raise


def _sender(ns: str, core: int, count: int, interval_ns: int, size: int, conn: Connection) -> None:
    try:
        _enter(ns, core)
        lib = _library()
        payload = bytes(size - IP_UDP_HEADERS)
        start, end = ctypes.c_uint64(), ctypes.c_uint64()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((RX_ADDR, PORT))
            n = int(
                lib.pnb_send(
                    s.fileno(), payload, len(payload), count, interval_ns, ctypes.byref(start), ctypes.byref(end)
                )
            )
        if n < 0:
            raise OSError(-n, os.strerror(-n))
        conn.send(("sent", n, start.value, end.value))
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
    rx_conn, rx_child = ctx.Pipe()
    tx_conn, tx_child = ctx.Pipe()
    rx = ctx.Process(
        target=_receiver, args=(pair.rx_ns, receiver_core, count, rx_child), name="baseline-receiver", daemon=True
    )
    tx = ctx.Process(
        target=_sender,
        args=(pair.tx_ns, sender_core, count, interval_ns, size, tx_child),
        name="baseline-sender",
        daemon=True,
    )
    started: list[ForkProcess] = []
    try:
        rx.start()
        started.append(rx)
        _expect(rx_conn, rx, "ready", CHILD_TIMEOUT_S)
        tx.start()
        started.append(tx)
        # The sender may fall behind the pace (the send path is slow): allow it 100 µs a datagram more.
        _, sent, start_ns, end_ns = _expect(
            tx_conn, tx, "sent", CHILD_TIMEOUT_S + count * (interval_ns + 100_000) / 1e9
        )
        rx_conn.send("sender done")
        _, received, received_bytes = _expect(rx_conn, rx, "received", CHILD_TIMEOUT_S)
        for p in started:
            p.join(CHILD_TIMEOUT_S)
        if sent != count:
            raise RuntimeError(f"the sender sent {sent} of {count} datagrams")
        return _Shot(interval_ns, count, sent, received, received_bytes, max(1, end_ns - start_ns), size)
    finally:
        for p in started:
            if p.is_alive():
                p.kill()
            p.join()
            p.close()
        for c in (rx_conn, rx_child, tx_conn, tx_child):
            c.close()


# --- public API --------------------------------------------------------------------------------------------------


def baseline_available() -> str | None:
    """None when the baseline can run here, else why not."""
    if os.geteuid() != 0:
        return "the kernel baseline needs root (it creates network namespaces and a veth pair)"
    if not Path("/proc/self/ns/net").exists():
        return "this kernel has no network namespaces (/proc/self/ns/net is missing)"
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

    def measure(interval_ns: int) -> Point:
        shot = _measure_once(pair, size, count, interval_ns, sender_core, receiver_core)
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
    achieved = shots[best].duration_ns / count if best is not None else None
    if best is None:
        notes.append("no measured interval took every datagram")
    elif achieved is not None and achieved > 1.1 * best:
        notes.append(
            f"sender-bound: asked for {best} ns, the sends took {achieved:.0f} ns each; the receiver took all "
            "the sender could send, so the figures are a lower bound on the receive path"
        )
    elif result.floor_reached:
        notes.append(f"even the shortest interval searched ({best} ns) took everything: the search's floor bounds it")
    return {
        "gbps": result.throughput_gbps,
        "pps": shots[best].pps if best is not None else None,
        "min_full_success_interval_ns": best,
        # mean time per send at that interval: above it when the sender could not keep the pace
        "achieved_interval_ns": achieved,
        "size": size,
        "count": count,
        "points": result.curve(),
        "method": (
            f"kernel UDP receive path over a veth pair between two network namespaces; {count} datagrams of "
            f"{size} B IP size (UDP payload {size - IP_UDP_HEADERS} B) sent at t0 + k*interval from core "
            f"{sender_core}, received with recvmmsg on core {receiver_core}; success = received/count; "
            f"Gbps = received x {size} B x 8 / (first send start to last send end)"
        ),
        "note": "; ".join(notes),
    }
