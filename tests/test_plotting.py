"""rivervalley.plotting: every helper draws on an Agg figure and leaves rcParams unchanged."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rivervalley as rv  # noqa: E402
from rivervalley import plotting as P  # noqa: E402


@pytest.fixture
def rc_guard():
    before = {k: v for k, v in matplotlib.rcParams.items() if k != "backend"}
    yield
    after = {k: v for k, v in matplotlib.rcParams.items() if k != "backend"}
    changed = {k for k in before if str(before[k]) != str(after[k])}
    assert not changed, f"rcParams changed: {sorted(changed)}"


@pytest.fixture
def grid():
    return P.loss_grid(rv.landscapes.standard_toy(), xlim=(-2.0, 4.0), ylim=(-0.5, 0.5), num=41)


def test_style_is_usable_by_name(rc_guard):
    with plt.style.context(P.STYLE):
        assert matplotlib.rcParams["axes.spines.top"] is False
    assert list(P.colors[:3]) == ["#0072B2", "#D55E00", "#009E73"]


def test_plot_schedule_marks_checkpoints(rc_guard):
    fig, ax = plt.subplots()
    t = np.arange(100)
    lr = rv.schedules.as_array(rv.schedules.wsd(1.0, 100, decay=0.2), 100)
    P.plot_schedule(ax, t, lr, checkpoints=[50, 99], label="wsd")
    line, dots = ax.lines
    np.testing.assert_array_equal(line.get_ydata(), lr)
    np.testing.assert_array_equal(dots.get_xdata(), [50, 99])
    np.testing.assert_allclose(dots.get_ydata(), [1.0, lr[99]])
    with pytest.raises(ValueError, match="shape"):
        P.plot_schedule(ax, t, lr[:-1])
    plt.close(fig)


def test_plot_loss_draws_parts_and_dashed_theory(rc_guard):
    fig, ax = plt.subplots()
    t = np.arange(10)
    river, hill = np.linspace(1, 0.5, 10), np.full(10, 0.1)
    P.plot_loss(ax, t, river + hill, river=river, hill=hill, theory=river + hill, label="total")
    assert len(ax.lines) == 4
    assert ax.lines[3].get_linestyle() == "--"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), ax.lines[1].get_ydata()
                               + ax.lines[2].get_ydata())
    labels = [t.get_text() for t in ax.legend().get_texts()]
    assert labels == ["total", "river loss", "hill loss", "theory"]
    plt.close(fig)


def test_plot_contour_log_levels_and_river(rc_guard, grid):
    fig, ax = plt.subplots()
    cs = P.plot_contour(ax, grid)
    lv = np.asarray(cs.levels)
    ratios = lv[1:] / lv[:-1]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-6)  # log-spaced
    assert ratios[0] > 1.05
    river = ax.lines[-1]
    np.testing.assert_allclose(river.get_ydata(), 0.0, atol=0.5 / 40 + 1e-9)
    # from a landscape object: the river is the landscape's own river line (v = c(u) = 0)
    fig2, ax2 = plt.subplots()
    P.plot_contour(ax2, rv.landscapes.standard_toy(), xlim=(-2, 4), ylim=(-0.5, 0.5), num=30)
    np.testing.assert_allclose(ax2.lines[-1].get_ydata(), 0.0, atol=1e-7)
    with pytest.raises(ValueError, match="xlim"):
        P.plot_contour(ax2, rv.landscapes.standard_toy())
    plt.close(fig)
    plt.close(fig2)


def test_plot_trajectory_colours_segments_by_lr(rc_guard):
    fig, ax = plt.subplots()
    xy = np.stack([np.linspace(0, 1, 6), np.linspace(0, 0.5, 6)], 1)
    lr = np.linspace(0.06, 0.0, 6)
    norm = P.lr_norm(0.0, 0.06)
    lc = P.plot_trajectory(ax, xy, lr, norm=norm)
    np.testing.assert_allclose(lc.get_array(), lr[:-1])
    assert len(lc.get_segments()) == 5
    assert lc.norm is norm and lc.get_cmap().name == P.lr_cmap().name
    cb = P.lr_colorbar(fig, ax, norm)
    assert cb.mappable.norm.vmax == pytest.approx(0.06)
    with pytest.raises(ValueError, match="xy has shape"):
        P.plot_trajectory(ax, xy[:, :1], lr)
    plt.close(fig)


def test_lr_norm_and_color():
    assert P.lr_norm(0.0, 0.1)(0.05) == pytest.approx(0.5)
    assert P.lr_color(0.1) == P.lr_cmap()(1.0)
    with pytest.raises(ValueError, match="vmin"):
        P.lr_norm(0.1, 0.1)


def test_plot_surface_and_heatmap(rc_guard, grid):
    fig = plt.figure()
    ax3 = fig.add_subplot(projection="3d")
    P.plot_surface(ax3, grid)
    assert len(ax3.collections) == 1 and len(ax3.lines) == 1
    assert ax3.get_zlim()[1] == pytest.approx(grid[2].max())
    fig2, ax = plt.subplots()
    x, y = np.geomspace(0.01, 1, 7), np.arange(3)
    z = (np.log(x)[None, :] - np.log([0.02, 0.1, 0.5])[:, None]) ** 2 + 1.0
    P.plot_heatmap(ax, x, y, z, fig=fig2, label="loss")
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), x[np.argmin(z, axis=1)])
    with pytest.raises(ValueError, match="z has shape"):
        P.plot_heatmap(ax, x, y, z.T)
    plt.close(fig)
    plt.close(fig2)


def test_mean_sem_matches_the_definition_and_ignores_nan():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(7, 5))
    m, se = P.mean_sem(v)
    np.testing.assert_allclose(m, v.mean(0), rtol=1e-12)
    np.testing.assert_allclose(se, v.std(0, ddof=1) / np.sqrt(7), rtol=1e-12)
    v[0, 2] = np.nan  # a diverged seed leaves the others' statistics
    m, se = P.mean_sem(v)
    np.testing.assert_allclose(m[2], v[1:, 2].mean(), rtol=1e-12)
    np.testing.assert_allclose(se[2], v[1:, 2].std(ddof=1) / np.sqrt(6), rtol=1e-12)
    assert np.isnan(P.mean_sem(v[:1])[1]).all()


def test_plot_sweep_draws_mean_and_band_per_config(rc_guard):
    import jax

    valley = rv.landscapes.standard_toy()
    scheds = rv.stack([rv.schedules.wsd(0.03, 200, decay=0.05), rv.schedules.wsd(0.03, 200, decay=0.4)])
    res = rv.sweep(valley, valley.init_params(), scheds, num_steps=200, seeds=4,
                   key=jax.random.key(1), noise=rv.noise.hill_only(1.0), batched=("schedule",),
                   record_every=20)
    fig, ax = plt.subplots()
    lines = P.plot_sweep(ax, res, labels=["WSD 5%", "WSD 40%"], parts=True)
    assert [ln.get_label() for ln in lines] == ["WSD 5%", "WSD 40%"]
    # the drawn curve is the seed mean of the records
    loss = np.asarray(res.trajectory.loss)
    np.testing.assert_allclose(lines[1].get_ydata(), loss[:, 1].mean(0), rtol=1e-6)
    assert len(ax.collections) == 2  # one s.e. band per configuration
    assert len(ax.lines) == 2 * 3  # mean + river + hill per configuration
    with pytest.raises(ValueError, match="batch"):
        P.plot_sweep(ax, res, batch=5)
    with pytest.raises(ValueError, match="labels"):
        P.plot_sweep(ax, res, labels=["one"])
    plt.close(fig)


def test_compute_axis_ticks_each_compute_once_on_a_log_scale(rc_guard):
    fig, ax = plt.subplots()
    ax.plot([1000, 4600], [1.0, 0.5])
    assert P.compute_axis(ax, [[1000, 2200], [2200, 4600]]) == [1000, 2200, 4600]
    fig.canvas.draw()
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "compute spent (steps)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1,000", "2,200", "4,600"]
    assert not any(t.get_text() for t in ax.get_xticklabels(minor=True))
    for bad in ([], [0, 100], [100, float("nan")]):
        with pytest.raises(ValueError, match="must hold finite steps > 0"):
            P.compute_axis(ax, bad)
    plt.close(fig)


def test_plan_styles_cover_every_plan_kind_distinctly():
    kinds = {rv.plans.cosine_per_budget(1.0, [10, 20]).kind, rv.plans.wsd(1.0, [10, 20]).kind,
             rv.plans.wsd_s(1.0, [10, 22], budgets=[10, 20]).kind,
             rv.plans.cyclic_cosine(1.0, [10, 20]).kind}
    for style in (P.PLAN_COLORS, P.PLAN_MARKERS, P.PLAN_LABELS):
        assert set(style) == kinds and len(set(style.values())) == len(kinds)
