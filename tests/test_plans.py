"""Tests of rivervalley.plans: THEORY.md §6 compute accounting, fork steps, branch structure."""

from __future__ import annotations

import numpy as np
import pytest

import rivervalley.plans as P
import rivervalley.schedules as S

PAPER = [12500, 25000, 50000]


def _parents_first(plan):
    seen = set()
    for b in plan.branches:
        assert b.parent is None or b.parent in seen, b.name
        if b.parent is None:
            assert b.start_step == 0
        else:
            parent = plan.branch(b.parent)
            assert parent.start_step <= b.start_step <= parent.end_step
        assert b.end_step > b.start_step
        seen.add(b.name)
    assert len(seen) == len(plan.branches)  # unique names
    for c in plan.checkpoints:
        b = plan.branch(c.branch)
        assert b.start_step < c.step <= b.end_step


def test_wsd_s_checkpoints_at_wsd_compute_paper_numbers():
    assert P.wsd_s_checkpoints_at_wsd_compute(PAPER, 0.1) == [12500, 26250, 53750]
    assert P.wsd_s_checkpoints_at_wsd_compute([100, 200, 300], 5) == [100, 205, 310]


def test_wsd_plan_compute_and_forks():
    p = P.wsd(0.1, PAPER, decay=0.1)
    assert p.kind == "wsd"
    assert [b.name for b in p.branches] == ["main", "decay@12500", "decay@25000"]
    assert [b.start_step for b in p.branches[1:]] == [11250, 22500]  # (1 - phi) T_k
    assert [b.end_step for b in p.branches] == [50000, 12500, 25000]
    assert all(b.parent == "main" for b in p.branches[1:])
    assert [c.compute for c in p.checkpoints] == [12500, 26250, 53750]
    assert [c.step for c in p.checkpoints] == PAPER
    assert [c.branch for c in p.checkpoints] == ["decay@12500", "decay@25000", "main"]
    # THEORY §6: total = T_K + sum_{k<K} phi T_k
    assert p.total_compute == 50000 + 0.1 * 12500 + 0.1 * 25000
    assert p.checkpoints[-1].compute == p.total_compute
    _parents_first(p)


def test_wsd_branch_schedules_follow_the_main_run_until_they_fork():
    p = P.wsd(1.0, [400, 800, 1600], decay=0.25, decay_shape="1-sqrt", warmup_steps=20)
    main = S.as_array(p.branch("main").schedule, 1600)
    for b in p.branches[1:]:
        lr = S.as_array(b.schedule, b.end_step)
        np.testing.assert_array_equal(lr[:b.start_step], main[:b.start_step])
        assert np.all(lr[b.start_step:] <= 1.0) and lr[b.start_step + 1] < 1.0
    # main stays at the peak through every fork
    assert np.all(main[20:1200] == 1.0)


def test_cosine_plan_compute():
    p = P.cosine_per_budget(0.1, PAPER, warmup_steps=100, min_ratio=0.1)
    assert p.total_compute == sum(PAPER)
    assert [c.compute for c in p.checkpoints] == [12500, 37500, 87500]
    assert all(b.parent is None for b in p.branches)
    assert [b.name for b in p.branches] == ["cosine@12500", "cosine@25000", "cosine@50000"]
    assert p.branches[0].schedule.describe()["num_steps"] == 12500
    _parents_first(p)


def test_wsd_s_plan_at_wsd_compute():
    ends = P.wsd_s_checkpoints_at_wsd_compute(PAPER, 0.1)
    p = P.wsd_s(0.1, ends, budgets=PAPER, decay=0.1)
    assert len(p.branches) == 1 and p.branches[0].parent is None
    assert [(c.step, c.budget, c.compute) for c in p.checkpoints] == [
        (12500, 12500, 12500), (26250, 25000, 26250), (53750, 50000, 53750)]
    # same compute as the WSD plan at every checkpoint
    assert [c.compute for c in p.checkpoints] == [c.compute for c in P.wsd(0.1, PAPER).checkpoints]
    assert p.total_compute == 53750
    lr = S.as_array(p.branches[0].schedule, 53750)
    # decays: 10% of each cycle (12500, 13750, 27500 steps) end at the checkpoints
    assert lr[12500 - 1250 - 1] == pytest.approx(0.1) and lr[12500 - 1250 + 1] < 0.1
    assert lr[26250 - 1375 - 1] == pytest.approx(0.1) and lr[26250 - 1375 + 1] < 0.1
    assert lr[12500] == pytest.approx(0.1)  # back at the peak
    _parents_first(p)


def test_cyclic_cosine_plan():
    p = P.cyclic_cosine(0.1, [100, 200, 400], min_ratio=0.1, rewarmup_steps=10)
    assert p.kind == "cyclic_cosine" and p.total_compute == 400
    assert [c.compute for c in p.checkpoints] == [100, 200, 400]
    assert p.branches[0].schedule.describe()["rewarmup_steps"] == 10
    _parents_first(p)


def test_summary_lists_everything():
    text = P.wsd(0.1, PAPER).summary()
    for s in ("plan wsd", "total compute 53750", "decay@12500", "11250", "26250", "T=50000"):
        assert s in text


@pytest.mark.parametrize("call, match", [
    (lambda: P.wsd(0.1, [200, 100]), r"budgets=\[200, 100\] is not strictly increasing"),
    (lambda: P.cosine_per_budget(0.1, [100, 100]), r"budgets=.*not strictly increasing"),
    (lambda: P.wsd(0.1, []), r"budgets=\[\] must hold at least one"),
    (lambda: P.wsd(0.1, [0, 100]), r"budgets=\[0, 100\] must hold whole step counts"),
    (lambda: P.wsd_s_checkpoints_at_wsd_compute([5, 3], 0.1), r"budgets=.*not strictly"),
    (lambda: P.wsd_s(0.1, [300, 200]), r"checkpoints=.*not strictly increasing"),
    (lambda: P.wsd_s(0.1, [100, 200], budgets=[100]), r"budgets=\[100\] must have one entry"),
    (lambda: P.wsd(0.1, [100, 200], decay=1.5), r"decay=1\.5 is outside \(0, 1\]"),
    (lambda: P.wsd(0.1, [100, 200], warmup_steps=95), r"decay=0\.1 .*do not fit"),
    (lambda: P.wsd(-0.1, [100, 200]), r"peak_value=-0\.1"),
    (lambda: P.cyclic_cosine(0.1, [100, 200], min_ratio=2.0), r"min_ratio=2\.0"),
    (lambda: P.wsd(0.1, [100], decay_shape="inverse"), r"min_ratio=0\.0 .*inverse"),
    (lambda: P.wsd(0.1, [100]).branch("nope"), r"branch='nope' is not in this plan"),
])
def test_plan_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# -- construction checks (issue 11): a Plan is valid by construction -------------------------------
def _main(end=100):
    return P.Branch("main", S.constant(0.1), 0, end, None)


def test_duplicate_branch_names_are_refused():
    # today: run_plan overwrites one of the two trajectories
    main = _main()
    with pytest.raises(ValueError, match=r"Plan.branches: the name 'main' is used twice"):
        P.Plan("custom", (main, main), (P.Checkpoint("T=100", "main", 100, 100, 100),))


@pytest.mark.parametrize("field, kwargs", [
    ("step", dict(step=25.5)), ("step", dict(step=0)), ("step", dict(step=True)),
    ("budget", dict(budget=np.nan)), ("compute", dict(compute=-3)),
])
def test_checkpoint_fields_are_whole_numbers(field, kwargs):
    # today: a checkpoint at 25.5 is computed at step 25 and reported as 25.5
    args = dict(name="c", branch="main", step=25, budget=25, compute=25) | kwargs
    with pytest.raises(ValueError, match=rf"Checkpoint.{field}="):
        P.Checkpoint(**args)


def test_integer_fields_are_stored_as_python_ints():
    c = P.Checkpoint("c", "main", np.int64(25), np.int32(25), 25)
    assert type(c.step) is int and type(c.budget) is int


@pytest.mark.parametrize("kwargs, match", [
    (dict(name=""), r"Branch.name=''"),
    (dict(name=3), r"Branch.name=3"),
    (dict(schedule=0.1), r"schedule=0.1 is not a schedule"),
    (dict(start_step=-1), r"Branch.start_step=-1"),
    (dict(start_step=1.5), r"Branch.start_step=1.5"),
    (dict(end_step=0), r"Branch.end_step=0"),
    (dict(end_step=100.0), r"Branch.end_step=100.0"),
    (dict(parent=""), r"parent=''"),
])
def test_branch_fields_are_checked(kwargs, match):
    args = dict(name="b", schedule=S.constant(0.1), start_step=0, end_step=100, parent=None)
    with pytest.raises(ValueError, match=match):
        P.Branch(**(args | kwargs))


def test_plan_structure_is_checked():
    main = _main()
    ck = P.Checkpoint("T=100", "main", 100, 100, 100)
    child = P.Branch("decay", S.constant(0.01), 90, 100, "main")
    with pytest.raises(ValueError, match=r"parent 'main' must be listed before it"):
        P.Plan("custom", (child, main), (ck,))
    with pytest.raises(ValueError, match=r"parent 'nope' is not in this plan"):
        P.Plan("custom", (main, P.Branch("d", S.constant(0.01), 90, 100, "nope")), (ck,))
    with pytest.raises(ValueError, match=r"forks at start_step=150, outside its parent 'main'"):
        P.Plan("custom", (main, P.Branch("d", S.constant(0.01), 150, 160, "main")), (ck,))
    with pytest.raises(ValueError, match=r"checkpoint 'x': branch='other' is not in this plan"):
        P.Plan("custom", (main,), (P.Checkpoint("x", "other", 50, 50, 50),))
    with pytest.raises(ValueError, match=r"checkpoint 'x': step=120 is outside its branch 'main'"):
        P.Plan("custom", (main,), (P.Checkpoint("x", "main", 120, 120, 120),))
    with pytest.raises(ValueError, match=r"Plan.branches=\(\) must hold"):
        P.Plan("custom", (), (ck,))
    with pytest.raises(ValueError, match=r"Plan.checkpoints\[0\]=.*not a Checkpoint"):
        P.Plan("custom", (main,), ("T=100",))
    # lists are accepted and stored as tuples
    p = P.Plan("custom", [main, child], [ck])
    assert isinstance(p.branches, tuple) and isinstance(p.checkpoints, tuple)
    _parents_first(p)
