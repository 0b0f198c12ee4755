"""The interactive explorer, driven programmatically under Agg (and once in a real X window)."""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import time

import jax
import matplotlib
import numpy as np
import pytest
from matplotlib.backend_bases import MouseButton, MouseEvent

import rivervalley as rv
from rivervalley import cli
from rivervalley import explorer as E
from rivervalley.explorer import _window

N = 400  # steps per run: every Explorer in this file shares one compiled program
DEFAULTS = dict(peak_value=0.06, warmup_fraction=0.0, decay_fraction=0.2, sigma=1.0,
                sharpness=20.0, meander=0.0, seed=0, family="wsd", decay_shape="linear")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def ex():
    explorer = E.Explorer(N)
    yield explorer


@pytest.fixture
def fresh(ex):
    ex.set(**DEFAULTS)
    return ex


def panels(ex: E.Explorer) -> dict[str, np.ndarray]:
    """Copies of what each panel shows."""
    out = {name: np.array(ex.lines[name].get_xydata(), copy=True)
           for name in ("loss", "river_loss", "hill_loss", "theory", "theory_river",
                        "theory_hill", "lr", "river")}
    segs = ex.lines["trajectory"].get_segments()
    out["trajectory"] = np.concatenate(segs) if segs else np.zeros((0, 2))
    out["valley"] = np.array(ex.valley_image.get_array(), copy=True)
    out["stability"] = np.array(ex.lines["stability"].get_ydata(), float)
    return out


def same(a, b) -> bool:
    return a.shape == b.shape and np.allclose(a, b, equal_nan=True, rtol=1e-6, atol=1e-9)


def count_draws(ex: E.Explorer) -> list:
    """A list that grows by one at every full draw of the explorer's canvas."""
    draws: list = []
    ex.fig.canvas.mpl_connect("draw_event", lambda event: draws.append(event))
    return draws


def release(ex: E.Explorer) -> None:
    """The mouse button goes up over the figure (the end of a slider drag)."""
    MouseEvent("button_release_event", ex.fig.canvas, 10, 10, MouseButton.LEFT)._process()


def limits(ex: E.Explorer) -> dict:
    return {name: (ax.get_xlim(), ax.get_ylim()) for name, ax in
            (("valley", ex.ax_valley), ("loss", ex.ax_loss), ("lr", ex.ax_lr))}


# (control, value, context settings, panels that must change, panels that must not)
CASES = [
    ("peak_value", 0.03, {}, {"lr", "loss", "theory", "trajectory"}, {"stability"}),
    ("warmup_fraction", 0.08, {}, {"lr", "theory", "loss"}, {"stability"}),
    ("decay_fraction", 0.45, {}, {"lr", "theory", "loss"}, {"stability"}),
    ("decay_fraction", 0.45, {"family": "constant"}, set(),
     {"lr", "theory", "loss", "trajectory"}),
    ("decay_fraction", 0.45, {"family": "cosine"}, set(), {"lr", "theory", "loss"}),
    ("sigma", 2.0, {}, {"loss", "theory", "theory_hill", "hill_loss"}, {"lr", "theory_river"}),
    ("sharpness", 50.0, {}, {"theory_hill", "loss", "valley", "stability"}, {"lr"}),
    ("meander", 0.5, {}, {"trajectory", "river", "valley"}, {"lr", "theory", "stability"}),
    ("seed", 3, {}, {"loss", "trajectory", "hill_loss"}, {"lr", "theory", "stability"}),
    ("family", "cosine", {}, {"lr", "theory", "loss"}, {"stability"}),
    ("family", "wsd_s", {}, {"lr", "theory"}, {"stability"}),
    ("decay_shape", "square", {}, {"lr", "theory"}, {"stability"}),
    ("decay_shape", "square", {"family": "cyclic_cosine"}, set(), {"lr", "theory", "loss"}),
]


@pytest.mark.parametrize("control,value,context,changes,keeps", CASES,
                         ids=[f"{c[0]}={c[1]}-{c[2].get('family', 'wsd')}" for c in CASES])
def test_control_changes_the_right_panels(fresh, control, value, context, changes, keeps):
    ex = fresh
    if context:
        ex.set(**context)
    before = panels(ex)
    if control in ex.sliders:
        ex.sliders[control].set_val(value)  # the widget path: on_changed -> update
    else:
        labels = [t.get_text() for t in ex.radios[control].labels]
        ex.radios[control].set_active(labels.index(value))
    after = panels(ex)
    assert getattr(ex.settings, control) == value
    for name in changes:
        assert not same(before[name], after[name]), f"{control}={value} left {name} unchanged"
    for name in keeps:
        assert same(before[name], after[name]), f"{control}={value} changed {name}"


def test_panels_match_the_library(fresh):
    """The LR line is the schedule factory's, the theory line is theory.expected_trajectory's,
    the SGD curves are rv.simulate's with the same key and the stability line is
    landscapes.stability_limit's (the explorer adds nothing of its own)."""
    ex = fresh
    ex.set(peak_value=0.05, decay_fraction=0.3, decay_shape="square", seed=4, sharpness=30.0)
    sched = rv.schedules.wsd(0.05, N, decay=0.3, decay_shape="square")
    steps = ex.lines["lr"].get_xdata()
    np.testing.assert_allclose(ex.lines["lr"].get_ydata(), np.asarray(sched(steps)), rtol=1e-6)
    valley = rv.landscapes.standard_toy(sharpness=30.0, amplitude=0.0,
                                        wavenumber=E.WAVENUMBER)
    noise = rv.noise.hill_only(1.0)
    pred = rv.theory.expected_trajectory(valley, sched, num_steps=N, noise=noise)
    np.testing.assert_allclose(ex.lines["theory"].get_ydata(), np.asarray(pred.loss), rtol=1e-4)
    np.testing.assert_allclose(ex.lines["theory_river"].get_ydata(),
                               np.asarray(pred.river_loss), rtol=1e-4)
    traj = rv.simulate(valley, valley.init_params(), sched, num_steps=N, noise=noise,
                       key=jax.random.key(4))
    np.testing.assert_allclose(ex.lines["loss"].get_ydata(), np.asarray(traj.loss), rtol=1e-4,
                               atol=1e-7)
    np.testing.assert_allclose(ex.lines["river_loss"].get_ydata(), np.asarray(traj.river_loss),
                               rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(ex.data["params"], np.asarray(traj.params), rtol=1e-4, atol=1e-6)
    # the hill line is the running mean of the recorded hill loss
    np.testing.assert_allclose(ex.lines["hill_loss"].get_ydata(),
                               E.running_mean(np.asarray(traj.hill_loss), E.SMOOTH), rtol=1e-4,
                               atol=1e-7)
    limit = rv.landscapes.stability_limit(valley)
    np.testing.assert_allclose(ex.lines["stability"].get_ydata(), [limit, limit], rtol=1e-6)


def test_every_family_matches_its_factory(fresh):
    ex = fresh
    ends = [int(f * N) for f in E.CYCLE_ENDS]
    expected = {
        "constant": rv.schedules.constant(0.04),
        "cosine": rv.schedules.cosine(0.04, N, warmup_steps=20),
        "wsd": rv.schedules.wsd(0.04, N, warmup_steps=20, decay=0.25, decay_shape="cosine"),
        "wsd_s": rv.schedules.wsd_s(0.04, ends, warmup_steps=20, decay=0.25,
                                    decay_shape="cosine"),
        "cyclic_cosine": rv.schedules.cyclic_cosine(0.04, ends, warmup_steps=20),
    }
    assert list(expected) == list(E.FAMILIES)
    for family, sched in expected.items():
        ex.set(family=family, peak_value=0.04, warmup_fraction=0.05, decay_fraction=0.25,
               decay_shape="cosine")
        steps = ex.lines["lr"].get_xdata()
        np.testing.assert_allclose(ex.lines["lr"].get_ydata(), np.asarray(sched(steps)),
                                   rtol=1e-6, atol=1e-9, err_msg=family)


def test_no_recompilation_after_the_first_update(ex, caplog):
    """Neither the frame nor anything else is traced or compiled again when controls move."""
    ex.set(**DEFAULTS)
    count = E.TRACE_COUNT["frame"]
    assert count >= 1
    with caplog.at_level(logging.WARNING), jax.log_compiles(True):
        for name, spec in E.SLIDERS.items():
            ex.sliders[name].set_val(spec.lo + 0.37 * (spec.hi - spec.lo) if name != "seed" else 7)
        for radio in ex.radios.values():
            for i in range(len(radio.labels)):
                radio.set_active(i)
        ex.sliders["peak_value"].set_val(0.15)  # a diverging run: same program
        release(ex)  # refits the limits: a new loss grid, same program
    assert E.TRACE_COUNT["frame"] == count
    jax_logs = [r.getMessage() for r in caplog.records if r.name.startswith("jax")]
    assert not [m for m in jax_logs if "tracing" in m or "ompil" in m], jax_logs


def test_log_compiles_check_can_fail(caplog):
    """The check above sees a compilation where there is one."""
    with caplog.at_level(logging.WARNING), jax.log_compiles(True):
        jax.jit(lambda x: x * 3.0 + 1.0)(np.arange(7.0))
    assert any("ompil" in r.getMessage() for r in caplog.records if r.name.startswith("jax"))


def test_a_slider_move_blits_and_keeps_the_limits(fresh):
    ex = fresh
    draws = count_draws(ex)
    before = limits(ex)
    ex.sliders["peak_value"].set_val(0.02)  # a much shorter run: the limits no longer fit
    assert ex.last_blitted and draws == []
    assert limits(ex) == before
    # the blitted pixels are what a full draw shows
    blitted = np.array(ex.fig.canvas.buffer_rgba(), copy=True)
    ex.fig.canvas.draw()
    np.testing.assert_array_equal(blitted, np.asarray(ex.fig.canvas.buffer_rgba()))
    # the release of the mouse button refits the limits: one full draw
    release(ex)
    assert len(draws) == 2 and limits(ex) != before
    fit = ex.panels.limits(ex.data, ex.settings, N)
    assert limits(ex)["valley"] == tuple(map(tuple, fit["valley"]))
    for name, (x, y) in fit.items():  # the others fit within the tolerance
        now_x, now_y = limits(ex)[name]
        assert not _window._moved(now_x, x, log=False), name
        assert not _window._moved(now_y, y, log=name == "loss"), name
    # the grid of the valley image spans the new view
    np.testing.assert_allclose(ex.valley_image.get_extent(), ex.panels.view(), rtol=1e-6)
    release(ex)  # nothing moved since: no redraw
    assert len(draws) == 2


def test_set_refits_and_radio_choices_redraw(fresh):
    ex = fresh
    draws = count_draws(ex)
    ex.set(seed=5)  # the same limits fit (within the tolerance): a blit
    assert ex.last_blitted and draws == []
    ex.radios["family"].set_active(E.FAMILIES.index("constant"))
    assert not ex.last_blitted and len(draws) == 1


def test_the_snapshot_shows_the_animated_artists(fresh):
    """savefig draws the data (animated artists are skipped by plain draws)."""
    ex = fresh

    def png_pixels() -> np.ndarray:
        buf = io.BytesIO()
        ex.savefig(buf, format="png")
        buf.seek(0)
        return matplotlib.image.imread(buf, format="png")

    shown = png_pixels()
    artists = [ex.valley_image, ex.status, *ex.lines.values()]
    for a in artists:
        a.set_visible(False)
    try:
        bare = png_pixels()
    finally:
        for a in artists:
            a.set_visible(True)
    h = shown.shape[0]
    for ax in (ex.ax_valley, ex.ax_loss, ex.ax_lr, ex.panels.axes["status"]):
        x0, y0, x1, y1 = np.round(ax.bbox.extents).astype(int)
        assert not np.array_equal(shown[h - y1:h - y0, x0:x1], bare[h - y1:h - y0, x0:x1])


def test_divergence_is_shown_not_raised(fresh):
    ex = fresh
    assert not ex.alert.get_visible()
    ex.sliders["peak_value"].set_val(0.13)  # eta * lambda = 2.6 > 2
    assert ex.diverged_at > 0
    assert ex.alert.get_visible()
    assert f"diverged at step {ex.diverged_at}" in ex.alert.get_text()
    # the same step the engine reports
    valley = rv.landscapes.standard_toy(sharpness=20.0, wavenumber=E.WAVENUMBER)
    sched = rv.schedules.wsd(0.13, N, decay=0.2)
    traj = rv.simulate(valley, valley.init_params(), sched, num_steps=N,
                       noise=rv.noise.hill_only(1.0), key=jax.random.key(0),
                       on_divergence="report")
    assert ex.diverged_at == int(traj.diverged_at)
    # GD-like growth |1 - eta lambda|^t = 1.6^t reaches the 1e10 threshold within ~60 steps
    assert ex.diverged_at < 80
    release(ex)  # the loss panel zooms on the steps before the divergence
    assert ex.ax_loss.get_xlim()[1] < N
    ex.fig.canvas.draw()  # a diverged run still draws
    ex.sliders["peak_value"].set_val(0.06)
    assert not ex.alert.get_visible() and ex.diverged_at == -1


BAD_SETTINGS = [("peak_value", 0.5, r"\[0.002, 0.15\]"), ("peak_value", True, "bool"),
                ("warmup_fraction", -0.01, r"\[0, 0.1\]"),
                ("decay_fraction", 0.6, r"\[0.02, 0.5\]"),
                ("sigma", float("nan"), "finite"), ("sharpness", 1.0, r"\[2, 100\]"),
                ("meander", 2.0, r"\[0, 1\]"), ("seed", 2.5, r"\[0, 20\]"), ("seed", 21, "20"),
                ("family", "linear", "known families"), ("decay_shape", "wsd", "known shapes")]


@pytest.mark.parametrize("name,value,message", BAD_SETTINGS,
                         ids=[f"{n}={v}" for n, v, _ in BAD_SETTINGS])
def test_bad_settings_raise_at_construction(name, value, message):
    with pytest.raises(ValueError, match=f"{name}=.*{message}"):
        E.Settings(**{name: value})


def test_settings_accept_the_range_ends_and_normalize_names():
    for name, spec in E.SLIDERS.items():
        for value in (spec.lo, spec.hi):
            assert getattr(E.Settings(**{name: value}), name) == value
    assert E.Settings(family="Cyclic Cosine").family == "cyclic_cosine"
    assert E.Settings(decay_shape="harmonic").decay_shape == "inverse"


def test_bad_input_raises_value_error(fresh):
    ex = fresh
    with pytest.raises(ValueError, match="num_steps=5"):
        E.Explorer(5)
    with pytest.raises(ValueError, match="settings="):
        E.Explorer(N, settings=dict(DEFAULTS))
    with pytest.raises(ValueError, match="family='bogus'"):
        ex.set(family="bogus")
    with pytest.raises(ValueError, match="not a control"):
        ex.set(learning_rate=0.1)
    # a bad value moves no control, also not the good ones before it
    with pytest.raises(ValueError, match="sharpness=500"):
        ex.set(peak_value=0.02, sharpness=500.0)
    assert ex.current_settings() == E.Settings(**DEFAULTS)
    with pytest.raises(ValueError, match="num_steps=5"):
        E.build_schedule(E.Settings(), 5)
    with pytest.raises(ValueError, match="view="):
        E.compute(E.Settings(), N, (0.0, np.inf, -1.0, 1.0))


def test_main_snapshot_writes_png(tmp_path):
    path = tmp_path / "explorer.png"
    assert E.main(snapshot=str(path), num_steps=N) == 0
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 50_000


def test_main_snapshot_writes_exactly_the_path_it_prints(tmp_path, monkeypatch, capsys):
    # no suffix is added (matplotlib alone would write "shot.png" and the message say "shot")
    monkeypatch.chdir(tmp_path)
    assert E.main(snapshot="shot", num_steps=N) == 0
    assert capsys.readouterr().out == "wrote shot\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot"]
    assert (tmp_path / "shot").read_bytes()[:8] == PNG


def test_main_without_display_returns_2(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert E.main(num_steps=N) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no display available; use --snapshot FILE" in err


def test_main_with_non_interactive_backend_returns_2(monkeypatch, capsys):
    monkeypatch.setenv("DISPLAY", ":12345")
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "agg")
    assert E.main(num_steps=N) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "use --snapshot FILE" in err


# -- the command line -----------------------------------------------------------------------------
def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@pytest.fixture
def built(monkeypatch):
    """The Explorers that main() builds, in order."""
    made: list[E.Explorer] = []

    class Recorded(E.Explorer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(_window, "Explorer", Recorded)
    return made


def test_every_control_is_a_flag_and_reaches_the_explorer(tmp_path, capsys, built):
    values = dict(peak_value=0.05, warmup_fraction=0.05, decay_fraction=0.3, sigma=0.5,
                  sharpness=25.0, meander=0.25, seed=3, family="wsd_s", decay_shape="1-sqrt")
    assert set(values) == set(E.SLIDERS) | set(E.RADIOS)
    path = tmp_path / "shots" / "view.png"
    argv = ["explore", "--num-steps", str(N), "--snapshot", str(path)]
    for name, value in values.items():
        argv += [flag(name), str(value)]
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == f"wrote {path}\n"
    assert path.read_bytes()[:8] == PNG
    assert sorted(p.name for p in path.parent.iterdir()) == ["view.png"]  # no temporary left
    (ex,) = built
    assert ex.settings == E.Settings(**values) and ex.num_steps == N
    sched = rv.schedules.wsd_s(0.05, [int(f * N) for f in E.CYCLE_ENDS], warmup_steps=20,
                               decay=0.3, decay_shape="1-sqrt")
    np.testing.assert_allclose(ex.lines["lr"].get_ydata(),
                               np.asarray(sched(ex.lines["lr"].get_xdata())), rtol=1e-6)


def test_unset_flags_keep_the_defaults(tmp_path, built):
    assert cli.main(["explore", "--num-steps", str(N), "--snapshot", str(tmp_path / "a.png"),
                     "--family", "WSD-S"]) == 0
    assert built[0].settings == E.Settings(family="wsd_s")


BAD_FLAGS = [(name, value) for name, spec in E.SLIDERS.items()
             for value in (spec.lo - 1, spec.hi + 1, "x")] + [
    ("seed", "2.5"), ("family", "linear"), ("decay_shape", "bogus")]


@pytest.mark.parametrize("name,value", BAD_FLAGS, ids=[f"{n}={v}" for n, v in BAD_FLAGS])
def test_a_bad_flag_value_exits_2_with_one_line(tmp_path, capsys, name, value):
    path = tmp_path / "x.png"
    assert cli.main(["explore", "--snapshot", str(path), flag(name), str(value)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("rivervalley explore: error: ") and flag(name) in err, err
    assert not path.exists()


def test_running_mean_and_chunks():
    x = np.array([4.0, 0.0, 2.0, 6.0, np.nan, 1.0])
    np.testing.assert_allclose(E.running_mean(x, 2)[:4], [4.0, 2.0, 1.0, 4.0])
    assert np.isnan(E.running_mean(x, 2)[4])
    pts = np.stack([np.arange(11.0), np.zeros(11)], 1)
    segs, colors = E.polyline_chunks(pts, np.arange(11.0), 4)
    assert len(segs) == 4
    # consecutive pieces share their end points: the path stays connected
    for a, b in zip(segs[:-1], segs[1:]):
        np.testing.assert_array_equal(a[-1], b[0])
    np.testing.assert_array_equal(np.concatenate([s[:-1] for s in segs] + [segs[-1][-1:]]), pts)


# -- a real window ------------------------------------------------------------------------------
_WINDOW_SCRIPT = textwrap.dedent("""
    import subprocess, sys
    import matplotlib
    matplotlib.use("TkAgg")
    import matplotlib.pyplot as plt
    import numpy as np
    from rivervalley import explorer

    ex = explorer.explore(num_steps=300)
    ex.sliders["peak_value"].set_val(0.05)
    widget = ex.fig.canvas.get_tk_widget()
    window = ex.fig.canvas.manager.window
    for _ in range(20):  # let Tk map and lay out the window, then draw for real
        plt.pause(0.25)
        window.update()
        if widget.winfo_ismapped() and widget.winfo_width() > 300:
            break
    ex.fig.canvas.draw()
    window.update()
    assert widget.winfo_ismapped(), "the window is not mapped"
    print("backend", matplotlib.get_backend(), "size", widget.winfo_width(), widget.winfo_height())
    ex.sliders["sigma"].set_val(2.0)  # a drag step: blitted into the window
    window.update()
    print("blitted", ex.last_blitted)
    out = sys.argv[1]
    if sys.argv[2] == "xwd":
        subprocess.run(["xwd", "-root", "-silent", "-out", out], check=True)
    else:
        np.save(out, np.asarray(ex.fig.canvas.buffer_rgba()))
    plt.close("all")
""")


def read_xwd(path) -> np.ndarray:
    """Pixels (h, w, 3) of a 24/32-bit TrueColor XWD dump (what `xwd -root` writes on Xvfb)."""
    raw = open(path, "rb").read()
    head = np.frombuffer(raw[:100], ">u4")
    header_size, width, height = int(head[0]), int(head[4]), int(head[5])
    bits_per_pixel, bytes_per_line, ncolors = int(head[11]), int(head[12]), int(head[19])
    byte_order = int(head[7])
    assert bits_per_pixel == 32, f"unexpected bits per pixel {bits_per_pixel}"
    start = header_size + 12 * ncolors
    rows = np.frombuffer(raw[start:start + bytes_per_line * height], np.uint8)
    px = rows.reshape(height, bytes_per_line)[:, :4 * width].reshape(height, width, 4)
    # byte_order 0 = LSBFirst: B, G, R, X
    return px[..., 2::-1][..., :3] if byte_order == 0 else px[..., 1:4]


@pytest.mark.skipif(shutil.which("Xvfb") is None,
                    reason="Xvfb is not installed (apt-get install xvfb x11-apps): "
                           "the real-window check needs a virtual X server")
def test_real_window_under_xvfb(tmp_path):
    pytest.importorskip("tkinter", reason="this Python has no tkinter: TkAgg cannot open")
    display = f":{90 + os.getpid() % 500}"
    server = subprocess.Popen(["Xvfb", display, "-screen", "0", "1600x1000x24", "-nolisten",
                               "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sock = f"/tmp/.X11-unix/X{display[1:]}"
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        assert server.poll() is None, "Xvfb exited"
        mode = "xwd" if shutil.which("xwd") else "buffer"
        out = tmp_path / ("shot.xwd" if mode == "xwd" else "shot.npy")
        script = tmp_path / "window.py"
        script.write_text(_WINDOW_SCRIPT)
        env = dict(os.environ, DISPLAY=display, MPLBACKEND="TkAgg")
        env.pop("WAYLAND_DISPLAY", None)
        res = subprocess.run([sys.executable, str(script), str(out), mode], env=env,
                             capture_output=True, text=True, timeout=240)
        assert res.returncode == 0, res.stderr[-3000:]
        assert "backend tkagg" in res.stdout.lower()
        assert "blitted True" in res.stdout
        img = read_xwd(out) if mode == "xwd" else np.load(out)[..., :3]
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert img.shape[0] >= 300 and img.shape[1] >= 300
    flat = img.reshape(-1, 3)
    # not blank: many distinct colours, and the figure's white background plus dark ink
    assert len(np.unique(flat[::7], axis=0)) > 100
    assert flat.std() > 20
    assert (flat.sum(1) < 150).mean() > 0.001 and (flat.sum(1) > 700).mean() > 0.2
