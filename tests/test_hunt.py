"""pseudonic hunt: the random plans (deterministic from the seed, every kind of stress, in range),
the shrinker (pure: a fake run function), and the hunt itself against the racy example driver."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import needs_two_cores
from pseudonic import hunt as h
from pseudonic import recording
from pseudonic.errors import ConfigError
from pseudonic.faults import KINDS, parse
from pseudonic.frames import MIN_FRAME, FrameSet
from pseudonic.hunt_command import hunt_cmd, parse_duration
from pseudonic.layout import SLOT, SLOT_SPURIOUS
from pseudonic.plan import Plan

RACY = f"{Path(__file__).parents[1] / 'examples' / 'racy_driver.py'}:RacyE1000"

seeds = st.integers(0, 2**32 - 1)
indices = st.integers(0, 10**6)


# -- the generator ---------------------------------------------------------------------------------


def test_a_trial_and_its_plan_come_from_seed_and_index_alone() -> None:
    for seed, index in ((0, 0), (7, 3), (2**32 - 1, 999_999)):
        a, b = h.make_trial(seed, index), h.make_trial(seed, index)
        assert a == b
        pa, pb = a.plan(), b.plan()
        assert np.array_equal(pa.slots, pb.slots)
        assert pa.frames.templates == pb.frames.templates
    # Another seed or another index draws another trial (the whole trial, not only its seed field).
    first = h.make_trial(7, 3)
    assert {repr(h.make_trial(s, 3).phases) for s in range(8)} != {repr(first.phases)}
    assert {repr(h.make_trial(7, i).phases) for i in range(8)} != {repr(first.phases)}


@settings(max_examples=60, deadline=None)
@given(seeds, indices, st.sampled_from([None, "spin", "eventfd", "signal"]))
def test_every_trial_is_in_range_and_its_plan_passes_check(seed: int, index: int, irq: str | None) -> None:
    t = h.make_trial(seed, index, irq)
    assert t.ring_size in h.RING_SIZES and t.buffer_size in h.BUFFER_SIZES
    assert t.irq == irq if irq is not None else t.irq in h.IRQ_LINES
    assert t.itr_ns % 256 == 0 and 0 <= t.itr_ns <= h.ITR_MAX_NS
    assert t.napi_budget == 0 or t.napi_budget in h.NAPI_BUDGETS
    assert 1 <= len(t.sizes) <= h.MAX_SIZES and len(set(t.sizes)) == len(t.sizes)
    assert all(MIN_FRAME <= s <= t.buffer_size for s in t.sizes)
    assert 1 <= len(t.phases) <= h.MAX_PHASES and 1 <= t.packets <= h.MAX_PACKETS
    for p in t.phases:
        assert p.kind in h.PHASE_KINDS and p.packets >= 1
        if p.kind == "burst":
            assert p.interval_ns == 0 and p.packets <= 3 * t.ring_size
        else:
            assert h.INTERVAL_NS[0] <= p.interval_ns <= h.INTERVAL_NS[1] and p.packets <= h.PHASE_PACKETS[1]
        assert p.pause_ns == 0 or h.PAUSE_NS[0] <= p.pause_ns <= h.PAUSE_NS[1]
    assert t.spurious <= max(1, int(h.MAX_SPURIOUS_FRACTION * t.packets))

    faulted = t.plan()
    faulted.check(t.buffer_size)  # every bound a run checks, against this trial's buffer
    assert len(t.faults) <= h.MAX_FAULT_KINDS and all(parse(spec).kind.name in KINDS for spec in t.faults)
    plan = replace(t, faults=()).plan()  # the timeline, before the faults add entries to it
    assert len(faulted) >= len(plan) and faulted.packets >= plan.packets
    assert len(plan) == t.packets + t.spurious and plan.packets == t.packets
    assert int(plan.due_ns[0]) == 0
    spurious = (plan.slots["flags"] & SLOT_SPURIOUS) != 0
    assert int(spurious.sum()) == t.spurious
    # The packets' own gaps: a burst's are 0, a paced phase's its interval, a jittered one's within 0..2x.
    gaps = np.diff(plan.due_ns[~spurious].astype(np.int64))
    assert (gaps >= 0).all()
    assert plan.origin["kind"] == "hunt" and (plan.origin["seed"], plan.origin["trial"]) == (seed, index)


def test_the_trials_cover_every_kind_of_stress() -> None:
    trials = [h.make_trial(0, i) for i in range(200)]
    assert {t.ring_size for t in trials} == set(h.RING_SIZES)
    assert {t.irq for t in trials} == set(h.IRQ_LINES)
    assert {p.kind for t in trials for p in t.phases} == set(h.PHASE_KINDS)
    assert any(t.itr_ns for t in trials) and any(not t.itr_ns for t in trials)
    assert {t.napi_budget for t in trials} == {0, *h.NAPI_BUDGETS}
    assert any(t.spurious for t in trials)
    assert any(len(t.sizes) > 1 for t in trials)  # mixes of sizes
    assert any(p.pause_ns for t in trials for p in t.phases)
    # Bursts that fill the ring: more packets back to back than the ring holds.
    assert any(p.kind == "burst" and p.packets > t.ring_size for t in trials for p in t.phases)


def test_each_phase_kind_makes_its_gaps() -> None:
    phases = (h.Phase("burst", 40, 0), h.Phase("paced", 30, 2000, 50_000), h.Phase("jitter", 400, 1000, 7000))
    trial = h.Trial(1, 2, 16, 2048, "spin", 0, 0, (60, 1500), phases, 0)
    plan = trial.plan()
    gaps = np.diff(plan.due_ns.astype(np.int64))
    burst, paced, jitter = gaps[:39], gaps[40:69], gaps[70:]
    assert (burst == 0).all()
    assert gaps[39] == 50_000 + 2000 and (paced == 2000).all()  # the pause comes before the phase
    assert gaps[69] >= 7000 and (jitter >= 0).all() and (jitter <= 2000).all()
    assert (jitter == 0).sum() >= 50 and 600 < jitter.mean() < 1400  # down to back to back, around the mean
    assert set(plan.slots["frame"].tolist()) == {0, 1} and plan.frames.sizes == [60, 1500]


def test_max_packets_cuts_the_timeline_and_keeps_the_platform() -> None:
    for index in range(20):
        full, cut = h.make_trial(3, index), h.make_trial(3, index, max_packets=50)
        assert cut.packets <= 50
        assert (cut.ring_size, cut.buffer_size, cut.irq, cut.itr_ns, cut.napi_budget, cut.sizes) == (
            full.ring_size, full.buffer_size, full.irq, full.itr_ns, full.napi_budget, full.sizes,
        )  # fmt: skip
        assert [(p.kind, p.interval_ns) for p in cut.phases] == [(p.kind, p.interval_ns) for p in full.phases][
            : len(cut.phases)
        ]


# -- the shrinker (pure) ---------------------------------------------------------------------------


def _plan(n: int, flags: list[int] | None = None) -> Plan:
    """n entries 1 us apart, entry i carrying frame i: the frame index names the entry through every shrink."""
    slots = np.zeros(n, dtype=SLOT)
    slots["due_ns"] = np.arange(n, dtype=np.uint64) * 1000
    slots["frame"] = np.arange(n)
    if flags is not None:
        slots["flags"] = flags
    frames = FrameSet.of([bytes(MIN_FRAME)] * n, stamped=False)
    return Plan.make(slots, frames, {"kind": "test"})


def _ids(plan: Plan) -> list[int]:
    return [int(f) for f in plan.slots["frame"]]


class FakeRun:
    """Fails when every needed entry is in the plan (and ``when`` holds of the options); counts its runs."""

    def __init__(self, needed: set[int], when: Any = None, flaky: float = 0.0, seed: int = 0) -> None:
        self.needed, self.when, self.flaky, self.runs = needed, when, flaky, 0
        self.rng = random.Random(seed)

    def __call__(self, plan: Plan, options: Mapping[str, Any]) -> str | None:
        self.runs += 1
        if not self.needed <= set(_ids(plan)):
            return None
        if self.when is not None and not self.when(options):
            return None
        if self.flaky and self.rng.random() < self.flaky:
            return None  # a race that did not happen this time
        return f"failed with {len(plan)} entries"


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_the_shrinker_ends_at_exactly_the_entries_the_failure_needs(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, 200))
    needed = data.draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=4))
    fake = FakeRun(needed)
    out = h.shrink(_plan(n), {"itr": 0}, "first", fake, budget=10_000)
    assert sorted(_ids(out.plan)) == sorted(needed)
    assert out.outcome == (f"failed with {len(needed)} entries" if out.steps else "first")
    assert not out.exhausted and out.dropped == []
    assert out.runs == fake.runs and out.entries_before == n
    # The first step is the shortest failing prefix: it ends with the last entry needed.
    if max(needed) + 1 < n:
        assert out.steps[0] == f"prefix {n} → {max(needed) + 1} entries"


@given(st.integers(2, 500), st.data())
def test_binary_search_finds_the_shortest_failing_prefix(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(1, n))
    calls: list[int] = []

    def fails(plan: Plan, options: Mapping[str, Any], trying: str) -> int | None:
        calls.append(len(plan))
        return len(plan) if len(plan) >= k else None

    length, out = h.shortest_prefix(_plan(n), {}, fails)
    assert length == k
    assert out == (k if k < n else None)  # None: no prefix shorter than the plan failed
    assert len(calls) <= n.bit_length()


def test_the_shrinker_never_keeps_a_candidate_that_did_not_fail_and_stays_in_its_budget() -> None:
    for seed in range(20):
        fake = FakeRun({5, 17, 40}, flaky=0.5, seed=seed)
        out = h.shrink(_plan(64), {}, "first", fake, tries=3, need=1, budget=40, confirm=5)
        assert {5, 17, 40} <= set(_ids(out.plan))
        # The steps' budget, then at most confirm x (log2(chain) + 1) confirming runs.
        chain = len(out.steps) + len(out.dropped)
        assert fake.runs == out.runs <= 40 + 5 * (chain.bit_length() + 1)


def test_a_step_that_does_not_fail_in_every_confirming_run_is_undone() -> None:
    # Always fails with entries 3 and 9; without 9 it fails only 25 % of the time, so with need=1 of 3
    # the steps drop 9 more often than not, by luck, and the confirming runs (4 of 5) undo that.
    undone = 0
    for seed in range(10):
        rng = random.Random(seed)

        def run(plan: Plan, options: Mapping[str, Any], rng: random.Random = rng) -> str | None:
            ids = _ids(plan)
            return "fail" if 3 in ids and (9 in ids or rng.random() < 0.25) else None

        out = h.shrink(_plan(12), {}, "first", run, tries=3, need=1, budget=200, confirm=5)
        assert {3, 9} <= set(_ids(out.plan)), out.steps
        # The outcome is the kept candidate's: a confirming run's failure, or the first one if none is kept.
        assert out.outcome == ("first" if out.steps == [] else "fail")
        undone += bool(out.dropped)
    assert undone  # the confirming runs did undo steps


def test_the_shrinker_turns_options_off_and_simplifies_the_plan_only_while_it_fails() -> None:
    flags = [SLOT_SPURIOUS if i % 4 == 3 else 0 for i in range(16)]
    # Fails whatever the options and without spurious entries: all turned off, all removed.
    out = h.shrink(_plan(16, flags), {"napi_budget": 64, "itr": 8192}, "x", FakeRun({0, 1}), budget=1000)
    assert out.options == {"napi_budget": 0, "itr": 0}
    assert "NAPI off" in out.steps and "ITR off" in out.steps
    assert _ids(out.plan) == [0, 1]
    # Needs NAPI: NAPI stays on.
    out = h.shrink(_plan(8), {"napi_budget": 64, "itr": 0}, "x", FakeRun({2}, when=lambda o: o["napi_budget"]))
    assert out.options["napi_budget"] == 64 and _ids(out.plan) == [2]


def test_a_simplification_once_kept_holds_for_every_later_candidate() -> None:
    flags = [SLOT_SPURIOUS if i % 4 == 3 else 0 for i in range(32)]
    plan = _plan(32, flags)
    plan.slots["frame"] = np.arange(32) % 2  # two frames in use
    seen: list[Plan] = []

    def run(candidate: Plan, options: Mapping[str, Any]) -> str | None:
        seen.append(candidate)
        return "fail" if candidate.packets >= 12 else None  # needs 12 packets, nothing else

    out = h.shrink(plan, {}, "first", run, budget=1000)
    assert out.steps == ["prefix 32 → 15 entries", "no spurious interrupts: 15 → 12 entries", "one frame size (60 B)"]
    assert len(out.plan) == 12 and not (out.plan.slots["flags"] & SLOT_SPURIOUS).any()
    assert len(set(out.plan.slots["frame"].tolist())) == 1
    first = next(i for i, c in enumerate(seen) if not (c.slots["flags"] & SLOT_SPURIOUS).any() and len(c) == 12)
    assert all(not (c.slots["flags"] & SLOT_SPURIOUS).any() for c in seen[first:])


def test_a_deletion_keeps_the_gaps_before_the_entries_it_keeps() -> None:
    slots = np.zeros(5, dtype=SLOT)
    slots["due_ns"] = [100, 110, 120, 200, 210]
    plan = Plan.make(slots, FrameSet.of([bytes(MIN_FRAME)], stamped=False), {})
    assert h.delete(plan, 1, 3).due_ns.tolist() == [100, 180, 190]
    assert h.delete(plan, 0, 2).due_ns.tolist() == [100, 180, 190]
    assert h.prefix(plan, 2).due_ns.tolist() == [100, 110]


def test_bad_shrinker_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="need <= tries"):
        h.shrink(_plan(4), {}, "x", FakeRun({0}), tries=2, need=3)


# -- the command's input ---------------------------------------------------------------------------


def test_durations_in_seconds_minutes_and_hours() -> None:
    assert parse_duration("60s") == 60 and parse_duration("10m") == 600 and parse_duration("1.5h") == 5400
    assert parse_duration("500ms") == 0.5
    for bad in ("10", "5x", "-1s", "0s"):
        with pytest.raises(ConfigError, match="--time"):
            parse_duration(bad)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--runs", "5", "--time", "1s"], "not both"),
        (["--runs", "0"], "out of range"),
        (["--time", "soon"], "not a duration"),
        (["--irq", "irq9"], "irq 'irq9' is unknown"),
        (["--replays", "-1"], "out of range"),
        (["--seed", "-4"], "seed -4 is out of range"),
        (["--shrink-budget", "-1"], "shrink budget -1 is out of range"),
        (["--max-packets", "0"], "max packets 0 is out of range"),
        (["--out", "/no/such/dir"], "not a directory"),
        (["--out", ".", "--record", "x.pnic"], "not both"),
        (["--record", "/no/such/dir/x.pnic"], "does not exist"),
    ],
)
def test_usage_errors_are_one_config_error_before_anything_runs(args: list[str], message: str) -> None:
    result = CliRunner().invoke(hunt_cmd, ["--driver", "python", *args])
    assert isinstance(result.exception, ConfigError), result.output
    assert message in str(result.exception)


def test_a_missing_driver_file_is_refused_before_any_trial(tmp_path: Path) -> None:
    seen: list[h.HuntProgress] = []
    with pytest.raises(ConfigError, match="does not exist"):
        h.hunt(str(tmp_path / "nothere.py"), runs=3, seed=1, record=tmp_path / "r.pnic", progress=seen.append)
    assert seen == []


# -- the hunt, end to end --------------------------------------------------------------------------

#: K replays per timing in the end-to-end test.
REPLAYS = 6


@needs_two_cores
def test_hunt_finds_the_racy_driver_and_its_replays_bring_the_failure_back(tmp_path: Path) -> None:
    seen: list[h.HuntProgress] = []
    r = h.hunt(
        RACY, runs=50, seed=2024, irq="spin", replays=REPLAYS, record=tmp_path / "race.pnic", max_packets=400,
        shrink_budget=20, wait_for_cores=True, progress=seen.append,
    )  # fmt: skip
    assert r.found and r.failing is not None and r.first_failure is not None and r.shrunk is not None
    assert r.first_failure.verdict is not None and not r.first_failure.verdict.passed
    assert r.trials == r.failing.index + 1 <= 50
    # The failing trial is the one its seed and index draw.
    assert r.failing == h.make_trial(2024, r.failing.index, "spin", 400)
    assert r.record == tmp_path / "race.pnic" and r.original_record == tmp_path / "race.unshrunk.pnic"
    shrunk, original = recording.load(r.record), recording.load(r.original_record)
    assert not shrunk.passed and not original.passed
    assert len(shrunk.plan) == r.shrunk.entries <= len(original.plan) == r.shrunk.entries_before
    assert shrunk.plan.origin["seed"] == 2024 and shrunk.plan.origin["trial"] == r.failing.index
    assert r.replay_commands()[0] == f"pseudonic replay {r.record}"
    # The replays bring the failure back in at least half of them.
    assert r.replays == REPLAYS
    assert r.reproduced["plan"] >= REPLAYS / 2, r.replay_codes
    assert seen[0].stage == "trial" and {"shrink", "replay"} <= {p.stage for p in seen}


@needs_two_cores
def test_the_reference_driver_gives_no_failure(tmp_path: Path) -> None:
    r = h.hunt("python", runs=15, seed=99, replays=3, record=tmp_path / "none.pnic", max_packets=300,
               wait_for_cores=True)  # fmt: skip
    assert not r.found and r.trials == 15 and r.record is None and r.shrunk is None
    assert not (tmp_path / "none.pnic").exists()


@needs_two_cores
def test_the_command_exits_1_with_the_replay_command_when_it_finds_a_failure(tmp_path: Path) -> None:
    record = tmp_path / "cli.pnic"
    result = CliRunner().invoke(
        hunt_cmd, ["--driver", RACY, "--seed", "7", "--irq", "spin", "--replays", "1", "--record", str(record),
                   "--max-packets", "300", "--shrink-budget", "10", "--wait", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert f"pseudonic replay {record}" in result.output and "--timing measured" in result.output
    assert "verdict: FAIL" in result.output and "seed 7" in result.output
    assert record.exists()


@needs_two_cores
def test_the_command_exits_0_and_says_no_failure_is_no_proof(tmp_path: Path) -> None:
    result = CliRunner().invoke(hunt_cmd, ["--driver", "python", "--runs", "3", "--seed", "5", "--out",
                                           str(tmp_path), "--wait"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "no failure in 3 runs" in result.output and "not a proof" in result.output
    assert list(tmp_path.iterdir()) == []


def test_the_shrinker_can_take_a_plans_faults_off() -> None:
    plain = Plan.periodic("10us", 50, 1500)
    assert h.without_faults(plain) is None
    faulted = h.faults.apply(plain, ["ce@3", "split:3@5", "lost-irq@7", "early-irq:2us@9"], 1, 64, 2048)
    step = h.without_faults(faulted)
    assert step is not None
    what, simpler = step
    assert what == "no faults on 4 entries" and len(simpler) == len(faulted)
    assert not simpler.slots["faults"].any() and not simpler.slots["early_ns"].any()
    assert not (simpler.slots["flags"] & 0xFF).any() and not (simpler.slots["parts"] > 1).any()


def test_some_trials_carry_faults_and_they_come_back_with_the_trial() -> None:
    drawn = [h.make_trial(5, i) for i in range(60)]
    with_faults = [t for t in drawn if t.faults]
    assert 0 < len(with_faults) < len(drawn)
    again = [h.make_trial(5, t.index) for t in with_faults]
    assert [t.faults for t in again] == [t.faults for t in with_faults]
    assert all(a.plan().slots.tobytes() == t.plan().slots.tobytes() for a, t in zip(again, with_faults, strict=True))


@pytest.mark.parametrize("seed", [0, 5, 2024])
def test_a_virtio_trial_draws_what_e1000_draws_less_what_virtio_has_none_of(seed: int) -> None:
    from pseudonic import faults

    refused = {name for name, kind in faults.KINDS.items() if kind.not_virtio}
    for index in range(40):
        e1000, virtio = h.make_trial(seed, index), h.make_trial(seed, index, device="virtio-net")
        assert (virtio.ring_size, virtio.buffer_size, virtio.irq, virtio.napi_budget, virtio.sizes, virtio.phases,
                virtio.spurious) == (e1000.ring_size, e1000.buffer_size, e1000.irq, e1000.napi_budget, e1000.sizes,
                                     e1000.phases, e1000.spurious)  # fmt: skip
        assert virtio.itr_ns == 0 and not {f.split(":")[0] for f in virtio.faults} & refused
        opts = virtio.options("c")
        assert opts["device"] == "virtio-net" and opts["irq_mode"] == "edge" and opts["itr"] == 0
        assert e1000.options("c")["irq_mode"] == "level" and e1000.options("c")["device"] == "e1000"
        assert virtio.plan().slots.size >= virtio.packets  # its faults apply to virtio-net
