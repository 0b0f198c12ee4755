"""Bigram LM: curvature of each token's row against its next-token entropy (THEORY.md §7)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from rivervalley.figures.registry import register

CAPTION = (
    "Bigram LM: the valley's sharpness is set by next-token entropy.\n"
    "Top Hessian eigenvalue of each token's row of a table bigram model after SGD (per unit token "
    "frequency), against that token's next-token entropy. Stochastic tokens sit at their finite "
    "optimum (open circles: exact value there) with curvature up to ~0.5, largest near 1 nat: "
    "hills. Deterministic tokens (entropy 0) flatten as training goes on (colours: step): rivers."
)


@dataclass(frozen=True)
class Config:
    vocab_size: int = 64
    det_fraction: float = 0.5
    logit_scales: tuple = (0.5, 1.5, 3.0, 5.0)
    batch_size: int = 64
    learning_rate: float = 8.0
    num_steps: int = 2000
    num_records: int = 4


FULL = Config()
FAST = Config(vocab_size=32, logit_scales=(1.0, 4.0), num_steps=600, num_records=3)


def compute(config: Config, key: jax.Array) -> dict:
    from rivervalley import bigram as bg
    from rivervalley import hessian as hs
    from rivervalley import schedules as S
    from rivervalley.dynamics import stack, sweep

    c = config
    k_data, k_run, k_lz = jax.random.split(key, 3)
    datas = [bg.make_data(vocab_size=c.vocab_size, det_fraction=c.det_fraction, logit_scale=s,
                          key=jax.random.fold_in(k_data, i)) for i, s in enumerate(c.logit_scales)]
    models = [bg.TableModel(d, batch_size=c.batch_size) for d in datas]
    every = c.num_steps // c.num_records
    res = sweep(stack(models), models[0].init_params(), S.constant(c.learning_rate),
                num_steps=c.num_steps, seeds=1, key=k_run, batched=("problem",),
                record_every=every, record_params=True)
    w = np.asarray(res.trajectory.params["W"])[0]  # (B, records, V, V)
    steps = np.asarray(res.trajectory.steps)  # (records,): stored once
    curv, curv_opt, ent, det = [], [], [], []
    for i, m in enumerate(models):
        p = np.asarray(m.data.marginal)
        curv.append(np.stack([np.asarray(m.row_curvature({"W": jnp.asarray(wr)})) / p
                              for wr in w[i]]))
        curv_opt.append(np.asarray(m.row_curvature(m.optimum_params())) / p)
        ent.append(np.asarray(m.data.row_entropy()))
        det.append(np.asarray(m.data.is_det))
    # Cross-check on the last model: Lanczos on full-Hessian HVPs gives the largest row curvature.
    last = {"W": jnp.asarray(w[-1, -1])}
    lz, _ = hs.top_eigenpairs(models[-1], last, 1, key=k_lz)
    return {
        "steps": steps,
        "curvature": np.stack(curv, 1),      # (records, datasets, V), per unit p(x)
        "curvature_opt": np.stack(curv_opt),  # (datasets, V)
        "entropy": np.stack(ent),             # (datasets, V)
        "is_det": np.stack(det),
        "lanczos_top": np.asarray(lz[0]),
        "dense_top": np.asarray(models[-1].row_curvature(last).max()),
    }


def plot(data: dict, config: Config):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    ent, det, steps = data["entropy"], data["is_det"], data["steps"]
    curv = data["curvature"]
    st = ~det
    ax.scatter(ent[st], data["curvature_opt"][st], s=30, facecolors="none", edgecolors="0.5",
               lw=0.8, label="stochastic, exact optimum")
    ax.scatter(ent[st], curv[-1][st], s=9, color="C0", label=f"stochastic, SGD step {steps[-1]}")
    cmap = plt.get_cmap("Oranges")
    n = len(steps) - 1
    rng = np.random.default_rng(0)
    for r in range(1, len(steps)):
        y = curv[r][det]
        x = 0.02 + 0.06 * rng.random(y.size)  # jitter around entropy 0
        ax.scatter(x, y, s=9, color=cmap(0.35 + 0.65 * r / n),
                   label=f"deterministic, step {steps[r]}")
    ax.set_yscale("log")
    ax.set_xlabel("next-token entropy H(q_x) (nats)")
    ax.set_ylabel(r"row curvature $\lambda_{\max}(H_x)/p(x)$")
    ax.legend(loc="lower right", fontsize=7.5)
    return fig


def check(data: dict, config: Config) -> None:
    curv, det = data["curvature"], data["is_det"]
    st = ~det
    # Deterministic rows flatten monotonically (their median curvature falls record after record).
    med = np.array([np.median(c[det]) for c in curv[1:]])
    assert np.all(np.diff(med) < 0), med
    # ... and end far flatter than the stochastic rows, which keep O(0.01-0.5) curvature.
    assert med[-1] < 0.2 * np.median(curv[-1][st]), (med[-1], np.median(curv[-1][st]))
    # Stochastic rows sit near their optimum's curvature.
    rel = np.abs(curv[-1][st] / data["curvature_opt"][st] - 1)
    assert np.median(rel) < 0.25, np.median(rel)
    # Above ~1 nat, lower entropy means a sharper hill (rank correlation); below, the curvature
    # falls again towards the deterministic limit.
    sel = st & (data["entropy"] > 1.0)
    e, c = data["entropy"][sel], curv[-1][sel]
    rho = np.corrcoef(np.argsort(np.argsort(e)), np.argsort(np.argsort(c)))[0, 1]
    assert rho < -0.5, rho
    # Lanczos on HVPs agrees with the dense per-row eigenvalues (the table Hessian is block-diagonal).
    assert abs(float(data["lanczos_top"]) / float(data["dense_top"]) - 1) < 1e-3


FIGURE = register(__name__, caption=CAPTION, full=FULL, fast=FAST, compute=compute, plot=plot,
                  check=check)
