"""Loss-curve laws fitted to real 124M-LLM runs: fit on constant LR + one cooldown, predict the rest."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rivervalley.figures.registry import register

CAPTION = """Loss-curve laws on real LLM runs (124M, SlimPajama; Schaipp et al. 2025 logs).
Each law is fitted to the validation loss of the constant-LR run at lr 1e-3 plus its 20%-linear
cooldown at 25k steps (anchor 1e-3 of rivervalley.laws.validate) and predicts the other cooldowns at
that LR (10-40%, linear and 1-sqrt, 15k-50k steps; lines: law, dots: data). Panel titles give the
held-out R^2 on the cooldown segments and the worst final-loss error, summarized in the last panel."""

ANCHOR = 1e-3


@dataclass(frozen=True)
class Config:
    laws: tuple[str, ...] = ("multi_power", "lr_annealing", "convex_bound", "river_valley",
                             "river_valley_2", "river_valley_spectrum")


FULL = Config()
FAST = Config(laws=("lr_annealing",))


def compute(config: Config, key=None) -> dict:
    from rivervalley import _laws_validation as V

    cat = V.catalog()
    res = V.validate(config.laws, [ANCHOR], data=cat, progress=False)
    entry = next(e for lr, e in cat.items() if np.isclose(lr, ANCHOR))
    fit_name = next(f["fit_cooldown"] for f in res["fits"])
    names = sorted(n for n in entry["cooldowns"] if n != fit_name)
    out: dict = {"law": np.array(config.laws), "curve": np.array(names)}
    out["start"] = np.array([V._decay_start(entry["cooldowns"][n]) for n in names])
    for n in names:
        c = entry["cooldowns"][n]
        out[f"obs_steps/{n}"], out[f"obs/{n}"] = c.steps, c.losses
    fit_c = entry["cooldowns"][fit_name]
    out["obs_steps/fit"], out["obs/fit"] = fit_c.steps, fit_c.losses
    main = entry["constant"]
    out["obs_steps/main"], out["obs/main"] = main.steps, main.losses
    summ = {(r["law"], r["family"]): r for r in res["summary"]}
    out["r2"] = np.array([summ[(n, "cooldowns")]["r2"] for n in config.laws])
    out["worst_final"] = np.array([summ[(n, "cooldowns")]["worst"] for n in config.laws])
    out["fit_r2"] = np.array([f["fit_r2"] for f in res["fits"]])
    for f in res["fits"]:
        out[f"params/{f['law']}"] = np.array(f["params"])
    for (law, _a, n), (s, _y, p) in res["series"].items():
        out[f"pred_steps/{law}/{n}"], out[f"pred/{law}/{n}"] = s, p
    return out


def table(data: dict) -> str:
    """Markdown: per law, fit R^2, held-out R^2 and worst final-loss error (anchor 1e-3)."""
    rows = ["| law | fit R^2 | held-out R^2 (cooldowns) | worst final-loss error |", "|---|---|---|---|"]
    for i, n in enumerate(data["law"]):
        rows.append(f"| {n} | {data['fit_r2'][i]:.4f} | {data['r2'][i]:.4f} | "
                    f"{100 * data['worst_final'][i]:.2f}% |")
    return "\n".join(rows)


def plot(data: dict, config: Config):
    import matplotlib.pyplot as plt

    laws = [str(x) for x in data["law"]]
    names = [str(x) for x in data["curve"]]
    ncols = 3
    nrows = -(-(len(laws) + 1) // ncols)            # one panel per law, then the summary
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.9 * nrows), squeeze=False)
    flat = list(axes.ravel())
    cmap = plt.get_cmap("viridis")
    for j, law in enumerate(laws):
        ax = flat[j]
        ax.plot(data["obs_steps/main"], data["obs/main"], color="0.6", lw=1, label="constant LR (fit)")
        ax.plot(data["obs_steps/fit"], data["obs/fit"], "k.", ms=2, label="cooldown (fit)")
        for i, n in enumerate(names):
            col = cmap(i / max(1, len(names) - 1))
            s = data[f"obs_steps/{n}"]
            k = s >= data["start"][i]
            ax.plot(s[k], data[f"obs/{n}"][k], ".", ms=2, color=col)
            ax.plot(data[f"pred_steps/{law}/{n}"], data[f"pred/{law}/{n}"], "-", lw=0.8, color=col)
        ax.set_title(f"{law}\nheld-out R²={data['r2'][j]:.3f}, "
                     f"worst final {100 * data['worst_final'][j]:.2f}%", fontsize=8)
        ax.set_xlabel("step")
        ax.set_ylim(2.85, 3.5)
        if j % ncols == 0:
            ax.set_ylabel("validation loss (nats/token)")
        else:
            ax.tick_params(labelleft=False)
        if j == 0:
            ax.plot([], [], "-", color=cmap(0.5), label="held-out: law (line), data (dots)")
            ax.legend(fontsize=6, loc="upper right")
    ax = flat[len(laws)]
    y = np.arange(len(laws))
    ax.barh(y, 100 * data["worst_final"], color="0.55")
    for yi, v in zip(y, data["worst_final"]):
        ax.text(100 * v, yi, f" {100 * v:.2f}%", va="center", fontsize=7)
    ax.set_yticks(y)
    ax.set_yticklabels(laws, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 130 * float(np.max(data["worst_final"])))
    ax.set_xlabel("worst final-loss error, held out (%)")
    ax.set_title("summary", fontsize=8)
    for ax in flat[len(laws) + 1:]:
        ax.set_visible(False)
    return fig


def check(data: dict, config: Config) -> None:
    laws = [str(x) for x in data["law"]]
    r2 = dict(zip(laws, data["r2"]))
    worst = dict(zip(laws, data["worst_final"]))
    # the schedule-aware laws predict the held-out cooldowns of their LR within 1.5%
    for n in ("lr_annealing", "river_valley", "river_valley_2", "river_valley_spectrum", "multi_power"):
        if n in r2:
            assert r2[n] > 0.6, (n, r2[n])
            assert worst[n] < 0.015, (n, worst[n])
    # the convex bound, with no notion of the cooldown's timing, is the weakest
    if "convex_bound" in r2:
        assert worst["convex_bound"] == max(worst.values()), worst


FIGURE = register(__name__, caption=CAPTION, full=FULL, fast=FAST, compute=compute, plot=plot,
                  check=check)
