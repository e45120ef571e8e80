"""A run never wrong, never silent: the verdict and exit status, driver code kept out of the
controller, one run per core, signals to any process of a run, and nothing a driver forks
outliving it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import pseudonic
from conftest import DRIVERS_DIR, leftover_segments, needs_two_cores
from pseudonic import schedule
from pseudonic.cli import main
from pseudonic.layout import RXD_ERR_CE
from pseudonic.node import children, descendants

pytestmark = needs_two_cores
MIS = DRIVERS_DIR / "misbehaving.py"


def _when_both_nodes_run(p: subprocess.Popen[str]) -> list[int]:
    """The run's driver and device node, once both exist and the device has begun (polled, bounded)."""
    for _ in range(6000):
        assert p.poll() is None, p.communicate()
        nodes = sorted(children(p.pid))
        if len(nodes) >= 2:
            return nodes
        time.sleep(0.01)
    raise AssertionError("the run never started both nodes")


def _until_sent(p: subprocess.Popen[str], packets: int) -> None:
    """Poll the run's segment (bounded) until its device has sent ``packets``."""
    from pseudonic.layout import SegmentView
    from pseudonic.segment import Segment, existing

    name = next(n for n in existing() if n.startswith(f"pseudonic-{p.pid}-"))
    seg = Segment.attach(name)
    try:
        assert seg.map is not None
        view = SegmentView(seg.map)
        for _ in range(6000):
            if int(view.dev["sent"][0]) >= packets:
                break
            time.sleep(0.01)
        view.release()
    finally:
        seg.close()


# -- the verdict and the exit status ------------------------------------------------------------


@pytest.mark.parametrize(
    ("driver", "says"),
    [
        ("DuplicatingE1000", "delivered more than once"),
        ("CorruptingE1000", "match no stored frame"),
        ("MaskedE1000", "nic.enable_interrupts(...) in open"),
        ("NoTailE1000", "RDT was never written"),
    ],
)
def test_a_run_whose_driver_got_it_wrong_exits_1_and_says_why(
    driver: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--count", "600", "--interval", "20us", "--driver", f"{MIS}:{driver}", "--quiet"])
    out = capsys.readouterr().out
    assert code == 1, out
    verdict = out[out.index("verdict: FAIL") :]
    assert says in " ".join(verdict.split())


def test_a_correct_driver_passes_with_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--count", "300", "--quiet"]) == 0
    assert "verdict: PASS" in capsys.readouterr().out


def test_error_descriptors_delivered_and_not_counted_fail_the_verdict() -> None:
    errors = [RXD_ERR_CE if i % 10 == 9 else 0 for i in range(200)]
    slots = schedule.from_offsets([50_000 * i for i in range(200)], errors=errors)
    r = pseudonic.run(slots=slots, driver=f"{MIS}:ErrorBlindDriver")
    assert r.verdict is not None and not r.passed and r.exit_code == 1
    assert {f.code for f in r.verdict.reasons} == {"error-delivered", "rx-errors-not-kept"}
    assert r.rx_errors is None and r.error_descriptors == 20 and r.delivered_with_error == 20


def test_device_drops_pass_unless_max_missed_says_otherwise() -> None:
    slow = f"{MIS}:SlowE1000"  # 300 us a handler run, packets every 20 us: the ring of 8 overflows
    r = pseudonic.run("20us", 400, 1500, driver=slow, ring_size=8)
    assert r.missed > 0 and r.passed, r.verdict
    r = pseudonic.run("20us", 400, 1500, driver=slow, ring_size=8, max_missed=0)
    assert r.missed > 0 and not r.passed and r.exit_code == 1


def test_bench_exits_1_when_a_run_fails_its_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "precision", "--count", "600", "--interval", "20us", "--driver", f"{MIS}:DuplicatingE1000"])
    err = capsys.readouterr().err
    assert code == 1 and "failed their verdict" in err and "delivered more than once" in err, err


# -- no driver code in the controller --------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "says"),
    [
        ("exit0", "ended the process with exit status 0 while being loaded"),
        ("sysexit3", "called sys.exit(3) while being imported"),
        ("segv", "was killed by SIGSEGV while being loaded"),
        ("endless", "did not finish loading within 1 s"),
    ],
)
def test_a_driver_that_misbehaves_at_import_is_a_usage_error(
    module: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    driver = str(DRIVERS_DIR / "bad_imports" / f"{module}.py")
    code = main(["run", "--count", "10", "--driver", driver, "--driver-timeout", "1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and says in err, err


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler to build the test libraries")
@pytest.mark.parametrize(("source", "says"), [("ctor_exit.c", "exit status 0"), ("ctor_segv.c", "SIGSEGV")])
def test_a_c_driver_whose_constructor_misbehaves_is_a_usage_error(
    source: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = tmp_path / "libbad.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(lib), str(DRIVERS_DIR / source)], check=True)
    for command in (["run", "--count", "10", "--driver", str(lib), "--quiet"], ["check-driver", str(lib)]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and says in err, err


# -- one run per core -------------------------------------------------------------------------------


def test_a_second_run_on_a_held_core_is_refused_naming_the_holder(capsys: pytest.CaptureFixture[str]) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "from pseudonic import cores\nwith cores.claim({1}):\n print('held', flush=True)\n"
         " input()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        for command in (["run", "--count", "10", "--quiet"], ["check-driver", "python"], ["bench", "precision"]):
            assert main(command) == 2
            err = capsys.readouterr().err
            assert f"core 1 is in use by another pseudonic run (pid {holder.pid}" in err and "--wait" in err
    finally:
        holder.communicate("\n")
    assert main(["run", "--count", "10", "--quiet"]) == 0, "the claim went with its holder"


# -- signals and failures keep the record -----------------------------------------------------------


@pytest.mark.parametrize("signo", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_to_the_controller_prints_the_partial_summary_and_exits_128_plus_n(
    signo: signal.Signals, tmp_path: Path, pseudonic_cli: Callable[..., subprocess.Popen[str]]
) -> None:
    before = set(leftover_segments())
    out_json = tmp_path / "r.json"
    p = pseudonic_cli("run", "--interval", "100us", "--count", "60000", "--json", str(out_json))
    nodes = _when_both_nodes_run(p)
    p.send_signal(signo)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 128 + signo, err
    assert f"interrupted by {signo.name}" in err and "Traceback" not in out + err
    assert "verdict: INTERRUPTED" in out and out_json.is_file()
    assert set(leftover_segments()) == before
    assert all(not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text() for pid in nodes)


@pytest.mark.parametrize("signo", [signal.SIGKILL, signal.SIGTERM])
def test_a_device_node_killed_mid_run_keeps_what_the_driver_took(
    signo: signal.Signals, pseudonic_cli: Callable[..., subprocess.Popen[str]]
) -> None:
    p = pseudonic_cli("run", "--interval", "20us", "--count", "100000", "--quiet")
    _driver, device = _when_both_nodes_run(p)[:2]
    _until_sent(p, 1000)  # the driver has frames to keep: the point is that they are kept
    os.kill(device, signo)
    out, err = p.communicate(timeout=120)
    flat = " ".join(out.split())
    assert p.returncode == 1, err
    assert "device node died" in flat and f"killed by {signo.name}" in flat and "last packet" in flat
    received = int(flat.split("received │ ")[1].split()[0])
    assert received > 0, "what the driver delivered before the failure is verified and reported"


def test_sigterm_to_the_driver_node_is_reported_as_a_signal_not_an_exception(
    pseudonic_cli: Callable[..., subprocess.Popen[str]],
) -> None:
    p = pseudonic_cli("run", "--interval", "20us", "--count", "100000", "--quiet")
    driver = _when_both_nodes_run(p)[0]
    os.kill(driver, signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    flat = " ".join(out.split())
    assert p.returncode == 1 and "driver node killed" in flat and "killed by SIGTERM" in flat, out + err
    assert "cli.py" not in flat and "Traceback" not in out + err


def test_whatever_a_driver_forks_ends_with_the_run() -> None:
    r = pseudonic.run("50us", 200, 1500, driver=f"{MIS}:ForkingE1000")
    assert r.passed, r.verdict
    assert descendants(os.getpid()) == [], "both children, the one in its own session too"


def test_pseudonics_own_failure_is_named_as_pseudonics(monkeypatch: pytest.MonkeyPatch) -> None:
    from pseudonic.upper import VerifyLayer

    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise MemoryError

    monkeypatch.setattr(VerifyLayer, "report", out_of_memory)  # inherited by the forked driver node
    r = pseudonic.run("50us", 100, 1500)
    assert r.error is not None and r.error["kind"] == "pseudonic error" and "MemoryError" in r.error["message"]
    assert r.verdict is not None and [f.code for f in r.verdict.reasons] == ["run-failed"]


def test_too_few_file_descriptors_is_one_line_naming_ulimit() -> None:
    code = (
        "import resource, sys\nresource.setrlimit(resource.RLIMIT_NOFILE, (10, 10))\nfrom pseudonic.cli import main\n"
    )
    code += "sys.exit(main(['run', '--count', '10', '--quiet']))\n"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "too many open files: raise ulimit -n (now 10)" in p.stderr
