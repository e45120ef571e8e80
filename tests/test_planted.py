"""Issue 10: every bug class, planted in a copy of a reference driver, is caught -- by check-driver, and by one
sanitized run with a fault plan that targets it.

The Python drivers are :mod:`drivers.planted` (the reference path in steps, one step changed each). The C ones
are ``drivers/e1000.c`` with one planted change: text replaced, the replaced text asserted found as often as
stated, built with warnings as errors. Each run waits for its cores (other test sessions share them).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import pseudonic
from conftest import needs_two_cores
from drivers.planted import PLANTED, SteppedE1000
from pseudonic.cdriver import include_dir
from pseudonic.conformance import CASE_NAMES, check_driver
from pseudonic.result import RunResult

CC = shutil.which("cc")
REFERENCE_C = Path(pseudonic.__file__).parent / "drivers" / "e1000.c"


@dataclass(frozen=True)
class Replace:
    """One planted change to e1000.c: ``old`` replaced by ``new``, where ``old`` occurs exactly ``count`` times."""

    old: str
    new: str
    count: int = 1


@dataclass(frozen=True)
class Bug:
    number: int
    #: the key of :data:`drivers.planted.PLANTED`
    name: str
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
    1: (Replace("    if (!(pnic_icr_read(nic) & RX_CAUSES))\n        return; /* not ours */\n",
                "    /* planted bug 1: ICR never read, so never cleared */\n"),),
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
    Bug(1, "never reads ICR", cases={"ICR, level line": "driver interrupt storm"}, run={"irq_mode": "level"},
        codes=("driver-failed",), also=lambda r: r.error is not None and r.error["kind"] == "driver interrupt storm"),
    Bug(2, "ignores EOP", cases={"fault split": "parts of split frames"}, run={"faults": ["split:3:0.2"]},
        codes=("fault-split", "corrupted"), also=lambda r: r.partial > 0),
    Bug(3, "returns with DD set", cases={"delivery": "DD still set", "fault burst": "DD still set"}, run=BURST,
        codes=("ring-dd-still-set",)),
    Bug(4, "copies before DD", cases={"fault early-irq": "poison", "fault spurious": "poison"},
        run={"faults": ["early-irq:20us:0.1"]}, codes=("corrupted", "undelivered"), also=lambda r: r.poisoned > 0),
    Bug(5, "ignores errors", cases={f"fault {k}": ERROR_BIT for k in ("rxe", "ce", "se", "seq", "cxe")},
        run={"faults": ["ce:0.1"]}, codes=("fault-ce", "error-delivered", "rx-errors-miscounted")),
    Bug(6, "trusts checksum bits",
        cases={"fault ipe": "handed up as checksum-checked", "fault tcpe": "handed up as checksum-checked"},
        run={"faults": ["ipe:0.1", "tcpe:0.1"]}, codes=("fault-ipe", "fault-tcpe")),
    Bug(7, "uses after recycle", cases={"fault lost-irq": "poison", "fault burst": "poison"},
        run={"faults": ["lost-irq:0.1"]}, codes=("corrupted", "undelivered"), also=lambda r: r.poisoned > 0),
    Bug(8, "RDT at head", cases={"delivery": "RDT written equal to RDH"}, run=BURST, codes=("ring-rdt-at-head",)),
    Bug(9, "RDT not wrapped", cases={"wrap-around": "RDT written past the ring"}, run=BURST,
        codes=("ring-rdt-outside-ring",)),
    Bug(10, "shares buffers", cases={"wrap-around": "one buffer given to the device by two descriptors"}, run=BURST,
        codes=("ring-buffer-shared",)),
    Bug(11, "buffer outside pool", cases={"wrap-around": "outside the receive buffer pool"}, run=BURST,
        codes=("ring-buffer-outside-pool",)),
    Bug(12, "one per interrupt", cases={"fault lost-irq": "never delivered", "fault burst": "never delivered"},
        run={"faults": ["lost-irq:0.1"]}, codes=("undelivered",)),
    Bug(13, "takes without DD",
        cases={"fault spurious": "RDT written equal to RDH", "fault early-irq": "never delivered"},
        run={"faults": ["spurious:0.1"]}, codes=("ring-rdt-at-head", "undelivered")),
)  # fmt: skip
#: the targeted runs' plan: 200 frames of 1500 B, 50 us apart (check-driver's fault cases), a fixed seed
RUN: dict[str, Any] = {"interval": "50us", "count": 200, "size": 1500, "fault_seed": 7}


def planted_source(bug: Bug) -> str:
    """e1000.c with ``bug`` planted; every replaced text is asserted found as often as stated."""
    text = REFERENCE_C.read_text()
    for change in C_PLANTS[bug.number]:
        assert text.count(change.old) == change.count, f"bug {bug.number}: {change.old!r} not found as stated"
        text = text.replace(change.old, change.new)
    return text.replace('pnic_driver_name[] = "c"', f'pnic_driver_name[] = "planted-{bug.number}"')


def build(source: str, out: Path) -> Path:
    assert CC is not None
    src = out.with_suffix(".c")
    src.write_text(source)
    cmd = [CC, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{include_dir()}", str(src), "-o"]
    done = subprocess.run([*cmd, str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def c_driver(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Bug], str]:
    """The C driver with a bug planted, built once per bug for the module."""
    if CC is None:
        pytest.skip("needs a C compiler (cc) to build the planted C drivers")
    built: dict[int, str] = {}
    where = tmp_path_factory.mktemp("planted")

    def get(bug: Bug) -> str:
        if bug.number not in built:
            built[bug.number] = str(build(planted_source(bug), where / f"libplanted{bug.number}.so"))
        return built[bug.number]

    return get


def driver_for(lang: str, bug: Bug, c_driver: Callable[[Bug], str]) -> str | type:
    return PLANTED[bug.name] if lang == "python" else c_driver(bug)


PARAMS = [
    pytest.param(lang, bug, id=f"{lang}-{bug.number}-{bug.name.replace(' ', '-')}")
    for bug in BUGS
    for lang in ("python", "c")
    if lang == "python" or bug.number in C_PLANTS
]


def test_every_bug_class_is_planted_in_python() -> None:
    assert [b.number for b in BUGS] == list(range(1, 14))
    assert [b.name for b in BUGS] == list(PLANTED)
    assert all(name in CASE_NAMES for b in BUGS for name in b.cases)


@needs_two_cores
@pytest.mark.parametrize("driver", ["python", "c", SteppedE1000], ids=["python", "c", "stepped"])
def test_the_reference_drivers_pass_every_check_driver_case(driver: str | type) -> None:
    """The references -- and the stepwise copy the Python bugs are planted in -- pass: what a planted driver
    fails is its bug's doing."""
    results = check_driver(driver, wait_for_cores=True)
    assert [r.name for r in results] == list(CASE_NAMES)
    assert [r.name for r in results if not r.passed] == [], [r.detail for r in results if not r.passed]


@needs_two_cores
@pytest.mark.parametrize(("lang", "bug"), PARAMS)
def test_check_driver_catches_the_planted_bug(lang: str, bug: Bug, c_driver: Callable[[Bug], str]) -> None:
    results = {r.name: r for r in check_driver(driver_for(lang, bug, c_driver), wait_for_cores=True)}
    for name, text in bug.cases.items():
        case = results[name]
        assert not case.passed, f"bug {bug.number} ({bug.name}) passed {name!r}: {case.detail}"
        assert text in case.detail, case.detail
        assert "Traceback" not in case.detail


@needs_two_cores
@pytest.mark.parametrize(("lang", "bug"), PARAMS)
def test_a_sanitized_run_with_a_targeted_fault_plan_catches_it(
    lang: str, bug: Bug, c_driver: Callable[[Bug], str]
) -> None:
    r = pseudonic.run(driver=driver_for(lang, bug, c_driver), sanitize=True, wait_for_cores=True, **RUN, **bug.run)
    assert r.verdict is not None and not r.passed
    codes = {f.code for f in r.verdict.reasons}
    assert set(bug.codes) <= codes, (r.verdict.line(), r.faults, r.ring_violations)
    if bug.also is not None:
        assert bug.also(r), (r.verdict.line(), r.faults, r.ring_violations, r.error)
