"""The segment against a machine short of something: one line that says what, nothing left behind.

The short machines are real where that is cheap: a small tmpfs mounted for the test stands in
for /dev/shm (root only; skipped elsewhere), and the descriptor limit is lowered in a child.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import needs_two_cores
from pseudonic import segment
from pseudonic.cli import main
from pseudonic.errors import MachineLimitError
from pseudonic.segment import Segment, StaleSegmentWarning, sweep_stale

Mount = Callable[[str], Path]


@pytest.fixture
def shm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mount]:
    """Mount a tmpfs with the given options and make it the segments' directory."""
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs as /dev/shm needs root")
        where = tmp_path / f"shm{len(mounted)}"
        where.mkdir()
        try:
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True
            )
        except FileNotFoundError:
            pytest.skip("no mount command here")
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(where)
        monkeypatch.setattr(segment, "SHM_DIR", where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", str(where)], check=True)


@pytest.fixture
def plain_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "shm"
    where.mkdir()
    monkeypatch.setattr(segment, "SHM_DIR", where)
    return where


# -- creating: the machine's limits ------------------------------------------------------------


def test_create_reserves_every_page_of_the_segment(plain_dir: Path) -> None:
    size = 3 << 20
    with Segment.create(size) as seg:
        assert os.stat(seg.path).st_blocks * 512 >= size, "a sparse segment fails later, by SIGBUS"


SHORT = [
    ("size=1m", r"not enough space in {d}: the run needs 4\.0 MiB, 1\.0 MiB free; "),
    ("ro,size=1m", r"{d} is read-only: "),
    ("size=1m,nr_inodes=1", r"no inodes left in {d} \(all 1 in use\): "),
]


@pytest.mark.parametrize(("options", "says"), SHORT, ids=[o for o, _ in SHORT])
def test_a_short_shm_is_one_clear_error_and_nothing_left(shm: Mount, options: str, says: str) -> None:
    d = shm(options)
    with pytest.raises(MachineLimitError, match=says.format(d=re.escape(str(d)))) as caught:
        Segment.create(4 << 20)
    assert "\n" not in str(caught.value)
    assert os.listdir(d) == []


@needs_two_cores
def test_a_run_on_a_too_small_shm_exits_2_with_one_line_and_leaves_nothing(
    shm: Mount, capsys: pytest.CaptureFixture[str]
) -> None:
    d = shm("size=1m")
    assert main(["run", "--count", "10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pseudonic: error: not enough space in {d}: the run needs ") and err.count("\n") == 1, err
    needed = re.search(r"needs (\d+\.\d) MiB, 1\.0 MiB free", err)
    assert needed is not None and float(needed[1]) > 1.0, err
    assert os.listdir(d) == []


# The child lowers its own descriptor limit so that the first descriptor the segment needs (slack 0:
# opening the file) or the second (slack 1: the one mmap keeps) is refused.
EMFILE_CHILD = """
import os, resource, sys
from pathlib import Path
from pseudonic import segment
segment.SHM_DIR = Path(sys.argv[1])
lowest_free = os.dup(0)
os.close(lowest_free)
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free + int(sys.argv[2]), hard))
try:
    segment.Segment.create(4096)
except segment.MachineLimitError as exc:
    print(exc)
"""


@pytest.mark.parametrize("slack", [0, 1], ids=["open", "mmap"])
def test_too_few_descriptors_is_one_line_naming_the_limit(plain_dir: Path, slack: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", EMFILE_CHILD, str(plain_dir), str(slack)], capture_output=True, text=True, check=True
    )
    assert re.fullmatch(r"too many open files: raise ulimit -n \(now \d+\)\n", done.stdout), done
    assert done.stderr == ""
    assert os.listdir(plain_dir) == []


@pytest.mark.parametrize(
    ("err", "says"),
    [
        (errno.ENFILE, "too many open files on this machine (fs.file-max reached)"),
        (errno.EACCES, "no permission to create files in "),
    ],
    ids=["ENFILE", "EACCES"],
)
def test_limits_hard_to_reach_for_real_are_one_line_too(
    plain_dir: Path, monkeypatch: pytest.MonkeyPatch, err: int, says: str
) -> None:
    def refuse(*args: object, **kwargs: object) -> int:
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(MachineLimitError) as caught:
        Segment.create(4096)
    assert str(caught.value).startswith(says)
    assert os.listdir(plain_dir) == []


def test_no_shm_at_all_is_a_machine_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segment, "SHM_DIR", tmp_path / "absent")
    with pytest.raises(MachineLimitError, match="is not available: pseudonic needs POSIX shared memory"):
        Segment.create(4096)


# -- the sweep: never fails a run --------------------------------------------------------------


@pytest.fixture
def dead_pid() -> int:
    """A pid no process can have: past kernel.pid_max."""
    return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1


@pytest.fixture
def fresh_warning(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[warnings.WarningMessage]]:
    """The sweep's warnings, counted as the sweep emits them (not deduplicated by Python)."""
    monkeypatch.setattr(segment, "_warned", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def test_the_sweep_leaves_what_it_cannot_remove_warns_once_and_removes_the_rest(
    plain_dir: Path, dead_pid: int, fresh_warning: list[warnings.WarningMessage]
) -> None:
    (plain_dir / f"pseudonic-{dead_pid}-x").mkdir()
    (plain_dir / f"pseudonic-{dead_pid}-link").symlink_to("/etc/hostname")
    (plain_dir / f"pseudonic-{dead_pid}-deadbeef").write_bytes(b"x")
    assert sweep_stale() == [f"pseudonic-{dead_pid}-deadbeef"]
    assert sweep_stale() == []
    with Segment.create(4096):
        pass
    assert sorted(os.listdir(plain_dir)) == [f"pseudonic-{dead_pid}-link", f"pseudonic-{dead_pid}-x"]
    assert [w.category for w in fresh_warning] == [StaleSegmentWarning]
    text = str(fresh_warning[0].message)
    assert f"pseudonic-{dead_pid}-x (not a regular file)" in text
    assert f"pseudonic-{dead_pid}-link (not a regular file)" in text


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_the_sweep_leaves_another_users_segment(
    plain_dir: Path, dead_pid: int, fresh_warning: list[warnings.WarningMessage]
) -> None:
    theirs = plain_dir / f"pseudonic-{dead_pid}-deadbeef"
    theirs.write_bytes(b"x")
    os.chown(theirs, 54321, 54321)
    assert sweep_stale() == []
    assert theirs.exists()
    assert [str(w.message) for w in fresh_warning] == [
        f"stale entries left in {plain_dir}, not this run's to remove: {theirs.name} (owned by uid 54321);"
        " remove them by hand if no run uses them"
    ]


def test_the_sweep_survives_a_segment_it_cannot_unlink(
    shm: Mount, dead_pid: int, fresh_warning: list[warnings.WarningMessage]
) -> None:
    d = shm("size=1m")
    (d / f"pseudonic-{dead_pid}-deadbeef").write_bytes(b"x")
    subprocess.run(["mount", "-o", "remount,ro", str(d)], check=True)
    assert sweep_stale() == []
    assert os.listdir(d) == [f"pseudonic-{dead_pid}-deadbeef"]
    assert len(fresh_warning) == 1
    assert "(Read-only file system)" in str(fresh_warning[0].message)


@pytest.mark.parametrize("pid", ["99999999999999999999", "\u00b2"], ids=["past a C int", "not ASCII"])
def test_the_sweep_ignores_names_that_hold_no_pid(plain_dir: Path, pid: str) -> None:
    odd = plain_dir / f"pseudonic-{pid}-x"
    odd.write_bytes(b"x")
    assert sweep_stale() == []
    assert odd.exists()
