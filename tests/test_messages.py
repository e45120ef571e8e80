"""One clear line for what a user gets wrong: driver libraries, cores, ITR, negative quantities.

Nothing here starts a run: the checks are called directly.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import DRIVERS_DIR
from pseudonic import config
from pseudonic.config import make_config, online_cores, parse_cpu_list
from pseudonic.errors import ConfigError, DriverLoadError
from pseudonic.loading import CDriver, check_library, include_dir
from pseudonic.node import available_cores
from pseudonic.plan import Plan
from pseudonic.units import parse_interval, parse_size

EXAMPLE_DRIVER = Path(__file__).parents[1] / "examples" / "c_driver" / "mydriver.c"
# e_type and e_machine: half-words right after the 16 bytes of e_ident, in either ELF class.
E_TYPE, E_MACHINE = 16, 18
OTHER_ARCH = {"x86_64": (183, "EM_AARCH64"), "aarch64": (62, "EM_X86_64")}


@pytest.fixture(scope="module")
def good_so(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of the example driver, built here as its README says."""
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc) to build a driver library with")
    out = tmp_path_factory.mktemp("cdriver") / "libmydriver.so"
    subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", f"-I{include_dir()}", str(EXAMPLE_DRIVER), "-o", str(out)],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


def _refused(path: Path) -> str:
    with pytest.raises(DriverLoadError) as exc:
        check_library(path)
    message = str(exc.value)
    assert "\n" not in message
    return message


def _patched(raw: bytes, offset: int, value: int) -> bytes:
    order = "little" if raw[5] == 1 else "big"  # EI_DATA
    return raw[:offset] + value.to_bytes(2, order) + raw[offset + 2 :]


def test_a_library_built_from_the_example_passes(good_so: bytes, tmp_path: Path) -> None:
    path = tmp_path / "libmydriver.so"
    path.write_bytes(good_so)
    check_library(path)
    check_library(str(path))


def test_the_elf_magic_alone_is_not_a_complete_elf_file(tmp_path: Path) -> None:
    path = tmp_path / "x.so"
    path.write_bytes(b"\x7fELF")
    assert _refused(path) == (
        f"driver '{path}' is not a complete ELF file (4 bytes; an ELF header alone is 64 bytes): rebuild it"
    )


def test_a_cut_elf_header_is_not_a_complete_elf_file(good_so: bytes, tmp_path: Path) -> None:
    path = tmp_path / "x.so"
    path.write_bytes(good_so[:17])
    bits = {1: 32, 2: 64}[good_so[4]]
    assert f"is not a complete ELF file (17 bytes; a {bits}-bit ELF header alone is" in _refused(path)


@pytest.mark.parametrize("keep", [4096, -1], ids=["first page", "all but the last byte"])
def test_a_truncated_library_is_refused_before_it_is_mapped(good_so: bytes, tmp_path: Path, keep: int) -> None:
    path = tmp_path / "t.so"
    path.write_bytes(good_so[:keep])
    # A linker writes the section header table last: the headers account for every byte.
    expected = f"is truncated ({path.stat().st_size} bytes, its headers need {len(good_so)}): rebuild it"
    assert expected in _refused(path)
    # Loading it used to map past the end of the file and die of SIGBUS.
    with pytest.raises(DriverLoadError, match=re.escape(expected)):
        CDriver.load(str(path))


@pytest.mark.skipif(platform.machine() not in OTHER_ARCH, reason="no other architecture named for this machine")
def test_a_library_for_another_architecture(good_so: bytes, tmp_path: Path) -> None:
    number, name = OTHER_ARCH[platform.machine()]
    path = tmp_path / "x.so"
    path.write_bytes(_patched(good_so, E_MACHINE, number))
    message = _refused(path)
    assert "is built for another architecture (" in message and f", {name}); this machine is" in message


def test_an_executable_is_not_a_shared_library(good_so: bytes, tmp_path: Path) -> None:
    path = tmp_path / "x.so"
    path.write_bytes(_patched(good_so, E_TYPE, 2))  # ET_EXEC
    assert "is an ELF file but not a shared library" in _refused(path)


def test_a_text_file_is_not_a_shared_library() -> None:
    assert "is not a shared library (no ELF header)" in _refused(DRIVERS_DIR / "not_a_library.so")


def test_a_directory_says_so(tmp_path: Path) -> None:
    path = tmp_path / "lib.so"
    path.mkdir()
    assert _refused(path).startswith(f"driver '{path}' is a directory")


def test_a_dangling_symbolic_link_names_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "lib.so"
    path.symlink_to(tmp_path / "gone.so")
    assert _refused(path) == f"driver '{path}' is a symbolic link to '{tmp_path / 'gone.so'}', which does not exist"


def test_a_missing_library_does_not_exist(tmp_path: Path) -> None:
    assert _refused(tmp_path / "lib.so") == f"driver '{tmp_path / 'lib.so'}' does not exist"


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cores 0 and 1 online and allowed, whatever this machine has."""
    monkeypatch.setattr(config, "available_cores", lambda: [0, 1])
    monkeypatch.setattr(config, "online_cores", lambda: [0, 1])


def test_a_core_this_process_may_not_use_is_told_from_one_that_does_not_exist(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(config, "available_cores", lambda: [0])
    monkeypatch.setattr(config, "online_cores", lambda: [0, 1])
    with pytest.raises(ConfigError) as exc:
        make_config(device_core=0, driver_core=1)
    assert str(exc.value) == (
        "driver core 1 exists but this process may not run on it (allowed: 0; see taskset/cgroup cpuset)"
    )
    with pytest.raises(ConfigError, match=r"^device core 7 does not exist here: give one of 0$"):
        make_config(device_core=7, driver_core=0)


def test_cpu_lists_as_the_kernel_writes_them() -> None:
    assert parse_cpu_list("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    assert parse_cpu_list("0\n") == [0]


def test_the_cores_this_process_may_use_are_online() -> None:
    assert set(available_cores()) <= set(online_cores())


@pytest.mark.parametrize("itr", ["100ns", "255ns", 1, "20ms"])
def test_an_itr_the_register_cannot_hold_is_refused(two_cores: None, itr: str | int) -> None:
    with pytest.raises(ConfigError, match=r"0 \(off\) \.\. 16776960 ns in steps of 256 ns, the shortest being 256"):
        make_config(itr=itr)


@pytest.mark.parametrize(
    ("itr", "itr_ns", "note"),
    [
        (0, 0, None),
        ("256ns", 256, None),
        ("1000ns", 1024, "ITR 1000 ns rounded to 1024 ns (256 ns steps)"),
        (1000, 1024, "ITR 1000 ns rounded to 1024 ns (256 ns steps)"),
        ("300ns", 256, "ITR 300 ns rounded to 256 ns (256 ns steps)"),
        ("16776960ns", 16776960, None),
    ],
)
def test_an_itr_between_steps_is_rounded_and_says_so(
    two_cores: None, itr: str | int, itr_ns: int, note: str | None
) -> None:
    cfg = make_config(itr=itr)
    assert (cfg.itr_ns, cfg.itr_note) == (itr_ns, note)
    assert cfg.as_dict()["itr_note"] == note


@pytest.mark.parametrize("interval", ["-5us", -5000])
def test_a_negative_interval_is_out_of_range(two_cores: None, interval: str | int) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"interval {interval!r} is out of range: give 1ns..10s")):
        Plan.periodic(interval, 10, 1500)


def test_a_negative_size_is_out_of_range(two_cores: None) -> None:
    with pytest.raises(ConfigError, match=re.escape("size -100 B is out of range: give 60..16384 bytes")):
        Plan.periodic("38us", 10, "-100")
    with pytest.raises(ConfigError, match="buffer size -2048 is not an e1000 receive buffer size"):
        make_config(buffer_size="-2KiB")


def test_negative_quantities_parse_only_when_the_caller_checks_the_range() -> None:
    assert parse_interval("-5us", signed=True) == -5000
    assert parse_size("-1.5KB", signed=True) == -1500
    with pytest.raises(ConfigError, match="'-5us' is out of range"):
        parse_interval("-5us")
    with pytest.raises(ConfigError, match=re.escape("'-1.5KB' is out of range")):
        parse_size("-1.5KB")
