# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: mystnb,tags,-all
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: python3
#     language: python
#     name: python3
# ---

# %% [markdown] tags=[]
# # Pareto weights (Figures 3 and 4)
#
# Section 3.3 of the paper treats the timesteps as tasks and asks for loss weights $w_t$ that make the combined gradient
# $\sum_t w_t\nabla_\theta\mathcal{L}^t$ as short as possible (its Eq. 10, whose minimiser gives a direction that lowers every
# timestep's loss: Theorem 1, proved on the [Appendix A](../book/appendix_a) page), with a regulariser $\lambda\sum_t w_t^2$
# that keeps every timestep in play (its Eq. 11). It makes two claims that this page measures:
#
# - **Figure 3 (the paper's):** weights found by optimisation (unconstrained gradient descent, UGD, its Eqs. 12–13) are
#   *unstable* when the per-timestep gradients are estimated from few samples, and stabilise as the number of samples
#   grows, at a growing cost.
# - **Figure 4 (the paper's):** put into Eq. 11, the UGD weights score lowest, and of the fixed strategies (constant, SNR,
#   max-SNR-1, min-SNR-5) **min-SNR-5 comes closest to the optimum**, the motivation for the paper's method.
#
# The paper does not say which model, which checkpoints, how many timestep groups or which $\lambda$ it used. Here: the
# converged digits benchmark's ViT (`vit_tiny`, 0.85M parameters; the [convergence page](exp_convergence.ipynb)), trained
# with min-SNR-5 for 2400 steps (batch 64, x0 target, cosine schedule), analysed at three checkpoints (early, halfway
# and at the end), with the timesteps grouped into ten bins of 100
# (`minsnr.pareto`), three seeds. The gradient of bin $k$ is that of the unweighted x0-space error over samples with $t$
# uniform in the bin; the fixed strategies enter Eq. 11 through their x0-space weight averaged over each bin and
# normalised to sum 1. $\lambda$ is set to `lam_rel` times the mean squared bin-gradient norm at each checkpoint, since it
# carries the units of a squared gradient. Next to UGD we give the exact minimiser of Eq. 11 (`min_norm_weights`), which
# UGD should approach. As a control, the same analysis runs on models trained with constant weights.
#
# **In short:** on the converged ViT neither figure reproduces as the paper draws it. In Figure 4, UGD reaches the
# optimum, but of the fixed strategies constant weights, not min-SNR-5, come closest on average, on the models trained
# with min-SNR-5 as on those trained with constant weights; min-SNR-5 is second and SNR and max-SNR-1 are last. In
# Figure 3 the UGD weights barely settle between 4 and 1024 samples per bin. The caveat at the end says what this
# measurement cannot separate.
#
# ```bash
# papermill nbs/exp_pareto.ipynb nbs/exp_pareto.ipynb --cwd .
# ```
#
# Each seed is one spec in the experiments' result store (`book/results/pareto/`, one file per seed named by a hash
# of its full configuration): a re-run reads it, a changed setting computes anew, and training resumes from the
# checkpoints in `runs/experiments/pareto/`. The figures below are drawn from the result files.

# %% tags=["parameters"]
seeds = [0, 1, 2]  # training seeds
steps = 2400  # training steps per seed: the converged benchmark's (x0 target, global batch 64)
checkpoints = [240, 1200, 2400]  # steps at which the gradients are analysed (multiples of their gcd are checkpointed)
num_bins = 10  # K: timestep bins of equal width over [0, 1000)
reference_samples = 512  # samples per bin for the gradients of Figure 4
samples_per_bin = [4, 16, 64, 256, 1024]  # Figure 3: n, samples per bin of one gradient estimate (≤ 1438 digits)
repeats = 10  # Figure 3: independent estimates (fresh images, timesteps, noise) per n, at the last checkpoint
lam_rel = 0.1  # λ of Eq. 11 as a multiple of the mean squared bin-gradient norm at the checkpoint
ugd_steps = 5000  # UGD: gradient-descent steps on β
ugd_lr = 100.0  # UGD: learning rate for the normalised objective (halved whenever a step would raise it)
control_weightings = ["const"]  # also trained with these, for Figure 4 only: does the training weighting favour itself?
quick = False  # `make book`: compute at most one missing seed, read the others from the stored results
results_dir = "book/results"  # the result store (committed)
runs_dir = "runs/experiments"  # checkpoints (not committed)

# %% tags=["remove-cell"]
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from IPython.display import Markdown, display

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notebook bar, which we do not use
from minsnr.core import atomic_write_json
from minsnr.experiments import VIT_DIGITS, run_suite
from minsnr.pareto import min_norm_weights, pareto_objective, per_bin_gradients, strategy_bin_weights, ugd_weights
from minsnr.plotting import book_style, figure, markdown_table, strategy_color
from minsnr.schedule import get_schedule
from minsnr.trainer import TrainConfig, build_dataset, checkpoint_path, load_checkpoint, model_for_dataset, train

torch.set_num_threads(1)  # one thread is also what makes the timings comparable
book_style()
COMMAND = "papermill nbs/exp_pareto.ipynb nbs/exp_pareto.ipynb --cwd ."
STRATEGIES = {"const": ["const", None], "snr": ["snr", None], "max-snr-1": ["max-snr", 1.0], "min-snr-5": ["min-snr", 5.0]}
schedule = get_schedule("cosine", 1000)


# %% tags=["hide-input"]
def train_config(seed: int, weighting: str = "min-snr", out_dir: str | Path = runs_dir) -> TrainConfig:
    "The training run of `seed` with `weighting` in `out_dir`/`weighting`, checkpointed at multiples of the checkpoints' gcd."
    every = math.gcd(*checkpoints)
    gamma = dict(STRATEGIES.values())[weighting]
    return TrainConfig(**{**VIT_DIGITS, "weighting": weighting, "gamma": gamma, "steps": steps, "ckpt_every": every,
                          "keep_ckpts": steps // every, "out_dir": f"{out_dir}/{weighting}", "progress": False, "seed": seed})


def experiment_config(seed: int) -> dict:
    "Everything that determines a seed's results (where its checkpoints live does not): the spec of its result file."
    run = asdict(train_config(seed))
    run.pop("out_dir")
    config = {"train": run, "checkpoints": checkpoints, "num_bins": num_bins, "reference_samples": reference_samples,
              "samples_per_bin": samples_per_bin, "repeats": repeats, "lam_rel": lam_rel,
              "ugd": {"steps": ugd_steps, "lr": ugd_lr}, "strategies": STRATEGIES, "control_weightings": control_weightings}
    return json.loads(json.dumps(config))  # tuples become lists, as in the stored file


def weights_and_scores(G: torch.Tensor, lam: float) -> dict:
    "Bin weights of every candidate, and their Eq. 11 objective at λ and at λ = 0 (Eq. 10)."
    weights = {name: strategy_bin_weights(schedule, s, g, num_bins) for name, (s, g) in STRATEGIES.items()}
    weights["UGD"] = ugd_weights(G, lam, steps=ugd_steps, lr=ugd_lr)
    weights["exact"] = min_norm_weights(G, lam).weights
    weights["min-norm (λ=0)"] = min_norm_weights(G).weights
    return {"weights": {k: w.tolist() for k, w in weights.items()},
            "objective": {k: pareto_objective(G, w, lam) for k, w in weights.items()},
            "objective_lam0": {k: pareto_objective(G, w) for k, w in weights.items()}}


def analyse_seed(seed: int, out_dir: str | Path) -> dict:
    "Train (or resume) the seed's runs in `out_dir`, then Figure 4's records per checkpoint and Figure 3's repeats."
    start = time.time()
    dataset = build_dataset(train_config(seed))
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    labels = torch.stack([torch.as_tensor(dataset[i][1]) for i in range(len(dataset))])
    model = model_for_dataset(train_config(seed), dataset)
    gradients = lambda n, generator_seed: per_bin_gradients(
        model, schedule, images, labels, target="x0", num_bins=num_bins, samples_per_bin=n,
        generator=torch.Generator().manual_seed(generator_seed), return_losses=True)

    def analyse_checkpoints(weighting: str) -> list[dict]:
        config = train_config(seed, weighting, out_dir)
        train(config)  # resumes from the newest checkpoint; returns at once if the run is complete
        records = []
        for step in checkpoints:
            # the optimiser's own weights, not the EMA: their gradients are what a weighting acts on
            model.load_state_dict(load_checkpoint(checkpoint_path(config.out_dir, step))["model"])
            G, losses = gradients(reference_samples, 1_000_000 * seed + step)
            norms_sq = G.square().sum(1)
            lam = lam_rel * norms_sq.mean().item()
            cosine = G @ G.T / (norms_sq.sqrt()[:, None] * norms_sq.sqrt()[None, :])
            records.append({"step": step, "lam": lam, "bin_loss": losses.tolist(), "grad_norm_sq": norms_sq.tolist(),
                            "cosine": cosine.tolist(), **weights_and_scores(G, lam)})
        return records

    control = {weighting: analyse_checkpoints(weighting) for weighting in control_weightings}
    records = analyse_checkpoints("min-snr")
    # Figure 3 at the last checkpoint of the min-SNR run (still loaded), with λ of its reference gradients
    lam = records[-1]["lam"]
    figure3 = {}
    for n in samples_per_bin:
        runs = {"UGD": [], "exact": [], "min-norm (λ=0)": [], "seconds": 0.0}
        for r in range(repeats):
            tic = time.time()
            G, _ = gradients(n, 1_000_000 * seed + 10_000 + 100 * n + r)
            runs["seconds"] += time.time() - tic
            runs["UGD"].append(ugd_weights(G, lam, steps=ugd_steps, lr=ugd_lr).tolist())
            runs["exact"].append(min_norm_weights(G, lam).weights.tolist())
            runs["min-norm (λ=0)"].append(min_norm_weights(G).weights.tolist())
        runs["seconds"] /= repeats  # per gradient estimate (all bins)
        figure3[str(n)] = runs
    metrics = {"checkpoints": records, "control": control, "figure3": {"step": checkpoints[-1], "lam": lam, "by_n": figure3}}
    return {"seed": seed, "status": "finished", "elapsed_s": round(time.time() - start, 1), "torch": torch.__version__,
            "metrics": metrics}


# %% tags=["remove-cell"]
@dataclass
class ParetoSpec:
    "One seed of this page's analysis, as a spec of the experiments' result store."
    seed: int
    suite = "pareto"

    @property
    def name(self) -> str: return f"seed{self.seed}"
    def to_json(self) -> dict: return experiment_config(self.seed)
    def run(self, out_dir: Path) -> dict: return analyse_seed(self.seed, out_dir)


stored = run_suite([ParetoSpec(s) for s in seeds], results_dir, runs_dir, limit=1 if quick else None, command=COMMAND)
for seed, result in zip(seeds, stored):
    if result is None: print(f"seed {seed}: no stored result (quick mode computes at most one missing seed)")
results = [r for r in stored if r is not None]

# %% [markdown] tags=[]
# ## Figure 4: the objective of Eq. 11 per strategy
#
# For each checkpoint, the objective $F_\lambda(w) = \lVert\sum_k w_k\mathbf{g}_k\rVert^2 + \lambda\sum_k w_k^2$ of each set of bin
# weights (normalised to sum 1), on gradients estimated from 512 samples per bin ({numref}`fig-pareto-objective`). Lower
# is closer to a direction that serves all bins at once. The left panel is the raw objective (it shrinks as training
# converges and the gradients get shorter); the right divides by the exact minimum at the same checkpoint, so 1 is
# optimal. The table gives the ratio to the minimum, mean and [min, max] over the seeds, and the closest fixed strategy.

# %% mystnb={"figure": {"caption": "Eq. 11's objective of each set of bin weights on the min-SNR-5 models at three checkpoints: raw (left) and over the exact minimum (right), mean over three seeds with min\u2013max whiskers; 1 on the right is optimal.", "name": "fig-pareto-objective"}} tags=["hide-input"]
names = ["const", "snr", "max-snr-1", "min-snr-5", "UGD", "exact"]
names0 = ["const", "snr", "max-snr-1", "min-snr-5", "UGD", "min-norm (λ=0)"]
OPTIMA = {"UGD": ("#444444", "//"), "exact": ("#000000", ""), "min-norm (λ=0)": ("#AAAAAA", "")}  # not strategies: greys
color = lambda name: OPTIMA[name][0] if name in OPTIMA else strategy_color(name)
hatch = lambda name: OPTIMA[name][1] if name in OPTIMA else ""
steps_axis = [rec["step"] for rec in results[0]["metrics"]["checkpoints"]]


def objectives(runs: list[list[dict]], key: str, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    "[seed, checkpoint, name] objectives, and the same divided by the last name's (the minimiser's)."
    values = np.array([[[record[key][n] for n in names] for record in run] for run in runs])
    return values, values / values[:, :, -1:]


def mean_range(values, fmt: str = "{:.2f}") -> str:
    "'mean [min, max]' of `values`."
    return f"{fmt.format(np.mean(values))} [{fmt.format(np.min(values))}, {fmt.format(np.max(values))}]"


def figure4(runs: list[list[dict]], trained_with: str) -> tuple[np.ndarray, list]:
    "Bars of Eq. 11 per candidate and checkpoint (mean, whiskers min–max over seeds); the ratios and the closest fixed strategy."
    objective, ratio = objectives(runs, "objective", names)
    fig, axes = figure(2, 3.4)
    width = 0.8 / len(names)
    for ax, values, label in [(axes[0], objective, "$F_\\lambda(w)$"), (axes[1], ratio, "$F_\\lambda(w)\\,/\\,\\min F_\\lambda$")]:
        for j, name in enumerate(names):
            x = np.arange(len(steps_axis)) + (j - (len(names) - 1) / 2) * width
            mean, lo, hi = values[:, :, j].mean(0), values[:, :, j].min(0), values[:, :, j].max(0)
            ax.bar(x, mean, width, color=color(name), hatch=hatch(name), edgecolor="white", linewidth=0.3, label=name)
            ax.errorbar(x, mean, yerr=np.maximum([mean - lo, hi - mean], 0), fmt="none", ecolor="k", elinewidth=0.8, capsize=1.5)
        ax.set_xticks(range(len(steps_axis)), [f"step {s}" for s in steps_axis])
        ax.set(yscale="log", ylabel=label)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=len(names))
    best = [[names[int(np.argmin(objective[s, c, :4]))] for c in range(len(steps_axis))] for s in range(len(runs))]
    return fig, ratio, best


def ratio_table(ratio: np.ndarray, best: list | None, names: list[str], label: str = "$F_\\lambda / \\min F_\\lambda$") -> None:
    "Markdown: the ratio to the minimum per candidate and checkpoint, and the closest fixed strategy of each seed."
    rows = [[name] + [mean_range(ratio[:, c, j]) for c in range(len(steps_axis))] for j, name in enumerate(names[:-1])]
    if best is not None:
        closest = [[b[c] for b in best] for c in range(len(steps_axis))]
        rows.append(["closest fixed strategy"] + [f"{s[0]} (all seeds)" if len(set(s)) == 1 else ", ".join(s) for s in closest])
    display(Markdown(markdown_table([label] + [f"step {s}" for s in steps_axis], rows)))


main_runs = [r["metrics"]["checkpoints"] for r in results]
fig, ratio, best_fixed = figure4(main_runs, "min-SNR-5")

# %% tags=["remove-input"]
ratio_table(ratio, best_fixed, names)


# %% tags=["hide-input"]
def closest(best: list) -> str:
    "Which fixed strategy comes closest at each checkpoint, and in how many seeds."
    parts = []
    for c, step in enumerate(steps_axis):
        counts = {}
        for b in best: counts[b[c]] = counts.get(b[c], 0) + 1
        parts.append(f"step {step}: " + ", ".join(f"{name} ({k} of {len(best)} seeds)" for name, k in
                                                  sorted(counts.items(), key=lambda kv: -kv[1])))
    return "; ".join(parts)


def order(ratio: np.ndarray, names: list[str]) -> str:
    "The fixed strategies from closest to farthest, by the mean ratio over seeds and checkpoints."
    means = {n: ratio[:, :, j].mean() for j, n in enumerate(names[:4])}
    return ", ".join(f"{n} ({v:.2f}×)" for n, v in sorted(means.items(), key=lambda kv: kv[1]))


ugd_gap = float((ratio[:, :, names.index("UGD")] - 1).max())
display(Markdown(f"**What we measured.** On the min-SNR-5 models, UGD reaches the minimum of Eq. 11 to within "
                 f"{100 * ugd_gap:.2g} % (it minimises the same objective). The closest fixed strategy: {closest(best_fixed)}. "
                 f"Averaged over seeds and checkpoints, from closest to farthest: {order(ratio, names)} the minimum. "
                 "The paper's Figure 4 has min-SNR-5 closest. The same comparison for Eq. 10 ($\\lambda = 0$, the pure "
                 "min-norm problem of Theorem 1, whose optimum may put all the weight on a few bins):"))


# %% tags=["hide-input"]
def table_lambda0(runs: list[list[dict]]) -> None:
    "Markdown: Eq. 10's objective (λ = 0) of each candidate over its minimum, per checkpoint."
    _, ratio0 = objectives(runs, "objective_lam0", names0)
    ratio_table(ratio0, None, names0, "$F_0 / \\min F_0$ (λ = 0)")


table_lambda0(main_runs)

# %% [markdown] tags=[]
# ### Control: a model trained without weighting
#
# A model trained with a weighting is pulled towards a point where *that* weighting's combination of the bin gradients
# (in expectation, the gradient of its training loss) vanishes. So a min-SNR-5 model may favour min-SNR-5 in Eq. 11 just
# because it was trained with it. The same analysis on models trained with constant weights (plain x0 MSE, otherwise
# identical: same seeds, steps and checkpoints) tests that. {numref}`fig-pareto-objective-control` and the tables below show the result.

# %% mystnb={"figure": {"caption": "Eq. 11's objective as in the figure above, on models trained with constant weights (same seeds, steps and checkpoints).", "name": "fig-pareto-objective-control"}} tags=["hide-input"]
control_ratio, control_best = {}, {}
for weighting in control_weightings:
    control_runs = [r["metrics"]["control"][weighting] for r in results]
    fig, control_ratio[weighting], control_best[weighting] = figure4(control_runs, f"{weighting} weighting")

# %% tags=["remove-input"]
for weighting in control_weightings:
    control_runs = [r["metrics"]["control"][weighting] for r in results]
    ratio_table(control_ratio[weighting], control_best[weighting], names)
    table_lambda0(control_runs)


# %% tags=["hide-input"]
def nearest(ratio: np.ndarray) -> str:
    "The fixed strategy with the lowest mean ratio over seeds and checkpoints."
    return names[int(np.argmin([ratio[:, :, j].mean() for j in range(4)]))]


for weighting in control_weightings:
    same = nearest(control_ratio[weighting]) == nearest(ratio)
    reading = (f"On average the same strategy, {nearest(ratio)}, comes closest after both trainings, so the ordering is not "
               "only the pull of the training weighting." if same else
               f"On average {nearest(ratio)} comes closest on the min-SNR-5 models and {nearest(control_ratio[weighting])} "
               "on these: each model favours the weighting it was trained with, so Figure 4 measures the training "
               "weighting as much as the strategy.")
    display(Markdown(f"**The control.** On the models trained with {weighting} weights the closest fixed strategy is: "
                     f"{closest(control_best[weighting])}; from closest to farthest on average: "
                     f"{order(control_ratio[weighting], names)}. A model is pulled towards the point where its own "
                     f"training weighting's combination of the bin gradients vanishes. {reading}"))

# %% [markdown] tags=[]
# ## The weights themselves
#
# Which bins do the optimal weights favour? Per bin (bin $k$ holds $t \in [100k, 100k+100)$; small $t$ is nearly clean), the
# exact minimiser of Eq. 11, UGD's weights, the pure min-norm weights ($\lambda = 0$), and the fixed strategies, at each
# checkpoint, for the min-SNR-5 models ({numref}`fig-pareto-weights`) and the models trained with constant weights
# ({numref}`fig-pareto-weights-control`).

# %% mystnb={"figure": {"caption": "Bin weights (bin k holds t in [100k, 100k+100)) of the optimal and the fixed strategies on the min-SNR-5 models, mean over seeds with the min\u2013max band.", "name": "fig-pareto-weights"}} tags=["hide-input"]
shown = ["exact", "UGD", "min-norm (λ=0)", "min-snr-5", "const", "snr"]
STYLE = {"UGD": "--", "min-norm (λ=0)": ":"}


def weights_figure(runs: list[list[dict]]):
    "Bin weights of each candidate per checkpoint: mean over seeds, the band min–max."
    fig, axes = figure(len(steps_axis), 2.8, sharey=True)
    for c, ax in enumerate(axes):
        for name in shown:
            w = np.array([run[c]["weights"][name] for run in runs])
            ax.plot(range(num_bins), w.mean(0), STYLE.get(name, "-"), color=color(name), label=name, marker="o", ms=2.5)
            ax.fill_between(range(num_bins), w.min(0), w.max(0), color=color(name), alpha=0.15, lw=0)
        ax.set(title=f"step {steps_axis[c]}", ylim=(0, 1), xticks=range(0, num_bins, 3), xlabel="bin k")
    axes[0].set_ylabel("bin weight (sum 1)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=len(shown))
    return fig


fig = weights_figure(main_runs)

# %% mystnb={"figure": {"caption": "The bin weights on the models trained with constant weights, as in the figure above.", "name": "fig-pareto-weights-control"}} tags=["hide-input"]
fig = weights_figure([r["metrics"]["control"][control_weightings[0]] for r in results])

# %% tags=["hide-input"]
trainings = [("min-SNR-5", main_runs)] + [(f"{w} weighting", [r["metrics"]["control"][w] for r in results]) for w in control_weightings]
rows = []
for trained_with, runs in trainings:
    for c, step in enumerate(steps_axis):
        for name in ("exact", "min-snr-5"):
            w = np.mean([run[c]["weights"][name] for run in runs], 0)
            rows.append([trained_with, step, name] + [f"{v:.2f}" for v in w] + [f"{w[:5].sum():.2f}"])
display(Markdown(markdown_table(["trained with", "step", "candidate"] + [str(k) for k in range(num_bins)] + ["bins 0–4"], rows)))


# %% tags=["hide-input"]
def mass_sentence(trained_with: str, runs: list[list[dict]]) -> str:
    "The share of the exact minimiser's weight on the five cleanest bins, per checkpoint, mean over seeds."
    cells = [f"{np.mean([run[c]['weights']['exact'] for run in runs], 0)[:5].sum():.2f} at step {step}"
             for c, step in enumerate(steps_axis)]
    return f"on the models trained with {trained_with}, {', '.join(cells)}"


ours_mass = sum(main_runs[0][0]["weights"]["min-snr-5"][:5])
display(Markdown("The share of the exact minimiser's weight on the five cleanest bins ($t < 500$): "
                 + "; ".join(mass_sentence(t, r) for t, r in trainings)
                 + f" (min-SNR-5 puts {ours_mass:.2f} there, constant weights 0.50)."))

# %% [markdown] tags=[]
# ## Figure 3: how stable are optimised weights?
#
# At the last checkpoint, the bin gradients are re-estimated `repeats` times from fresh samples (images, timesteps,
# noise), with $n$ samples per bin, and UGD is run on each estimate ($\lambda$ as above, from the 512-sample gradients).
# {numref}`fig-pareto-repeats` shows the UGD weights of every repeat for seed 0 and {numref}`fig-pareto-spread` their
# spread, $\sum_k \sigma_k$ with $\sigma_k$ the standard deviation of bin $k$'s weight over the repeats,
# which is the weight-averaged coefficient of variation $\sum_k \bar w_k\,(\sigma_k/\bar w_k)$ since the weights sum to 1;
# one line per seed, for UGD and for the $\lambda = 0$ min-norm weights.

# %% mystnb={"figure": {"caption": "UGD weights of seed 0 from ten independent gradient estimates (grey) with n samples per bin, and from the 512-sample gradients (black).", "name": "fig-pareto-repeats"}} tags=["hide-input"]
ns = [int(n) for n in results[0]["metrics"]["figure3"]["by_n"]]
by_n = lambda r, n: r["metrics"]["figure3"]["by_n"][str(n)]
sigma_sum = {key: np.array([[np.array(by_n(r, n)[key]).std(0).sum() for n in ns] for r in results])
             for key in ("UGD", "exact", "min-norm (λ=0)")}
fig, axes = figure(len(ns), 2.4, sharey=True)
for ax, n in zip(axes, ns):
    for w in by_n(results[0], n)["UGD"]:
        ax.plot(range(num_bins), w, color=color("UGD"), alpha=0.35, lw=0.9)
    ax.plot(range(num_bins), results[0]["metrics"]["checkpoints"][-1]["weights"]["UGD"], color="black", lw=1.6)
    ax.set(title=f"n = {n}", ylim=(0, 0.6), xticks=[0, 9], xlabel="bin k")
axes[0].set_ylabel("UGD weight");

# %% mystnb={"figure": {"caption": "The spread of the weights over the ten repeats, summed over bins, against the samples per bin, one line per seed, for UGD and the \u03bb = 0 min-norm weights; dotted: the 1/\u221an of Monte-Carlo noise through the largest n.", "name": "fig-pareto-spread"}} tags=["hide-input"]
fig, ax = figure(1, 3.0)
for key, style in [("UGD", "o-"), ("min-norm (λ=0)", "s--")]:
    for s, r in enumerate(results):
        ax.plot(ns, sigma_sum[key][s], style, color=color(key), alpha=0.8, label=key if s == 0 else None)
reference = sigma_sum["UGD"].mean(0)[-1] * np.sqrt(ns[-1] / np.array(ns))  # Monte-Carlo noise, through the largest n
ax.plot(ns, reference, ":", color="black", label="∝ 1/√n")
ax.set(xscale="log", yscale="log", xlabel="n (samples per bin)", ylabel="$\\sum_k \\sigma_k$")
ax.legend();

# %% tags=["remove-input"]
seconds = [np.mean([by_n(r, n)["seconds"] for r in results]) for n in ns]
rows = [[n, mean_range(sigma_sum["UGD"][:, i], "{:.3f}"), f"{sigma_sum['exact'][:, i].mean():.3f}",
         mean_range(sigma_sum["min-norm (λ=0)"][:, i], "{:.3f}"), f"{seconds[i]:.2f}"] for i, n in enumerate(ns)]
display(Markdown(markdown_table(["n per bin", "UGD Σσ_k", "exact Σσ_k", "min-norm (λ=0) Σσ_k", "s per estimate"], rows)))
slope = np.polyfit(np.log(ns), np.log(sigma_sum["UGD"].mean(0)), 1)[0]
display(Markdown(f"A log-log fit over the {len(ns)} sample sizes gives a UGD spread $\\propto n^{{{slope:.2f}}}$."))

# %% tags=["hide-input"]
ugd = sigma_sum["UGD"].mean(0)
falls = all(b < a for a, b in zip(ugd, ugd[1:]))
display(Markdown(
    f"**What we measured.** The summed standard deviation of the UGD weights over the repeats is "
    + ", ".join(f"{v:.2f} at $n = {n}$" for n, v in zip(ns, ugd)) + " (mean over seeds), "
    + ("falling at every step" if falls else "not falling steadily") + f" (log-log slope {slope:.2f}; Monte-Carlo noise "
    f"alone gives −0.5), while one estimate of the ten bin gradients takes {seconds[0]:.2f} s to {seconds[-1]:.1f} s on one "
    f"CPU thread. The exact minimiser of Eq. 11 has a spread of {sigma_sum['exact'].mean(0)[-1]:.2f} at $n = {ns[-1]}$, "
    f"like UGD's, so what varies is the gradient estimate, not the optimiser; the pure min-norm weights "
    f"($\\lambda = 0$), which sit on a few bins and jump between them, spread {sigma_sum['min-norm (λ=0)'].mean(0)[-1]:.2f}."))

# %% [markdown] tags=[]
# **Caveat.** The paper does not say at which point of training its Figures 3 and 4 were measured. Our checkpoints
# include converged models, near which the mean gradient of each bin is small against its sampling noise; the
# gradients' signal-to-noise ratio was not measured here, so how much of the spread above is that noise is an open
# question. With $\lambda$ at 0.1 times the mean squared bin-gradient norm the exact minimiser of Eq. 11 can sit on a
# few bins (the table of weights above), so the objective rewards sparse weightings that no fixed strategy is; a larger
# $\lambda$ would favour smooth ones.

# %% tags=["remove-cell"]
summary = {"seeds": [r["seed"] for r in results], "lam_rel": lam_rel, "steps": steps_axis,
           "objective_ratio_mean": {n: ratio[:, :, j].mean(0).round(4).tolist() for j, n in enumerate(names)},
           "best_fixed_strategy": best_fixed,
           "control": {w: {"objective_ratio_mean": {n: control_ratio[w][:, :, j].mean(0).round(4).tolist() for j, n in enumerate(names)},
                           "best_fixed_strategy": control_best[w]} for w in control_weightings},
           "figure3": {"n": ns, "ugd_spread_mean": sigma_sum["UGD"].mean(0).round(4).tolist(),
                       "min_norm_spread_mean": sigma_sum["min-norm (λ=0)"].mean(0).round(4).tolist(), "slope": round(slope, 3)}}
atomic_write_json(Path(results_dir, "summary", "pareto.json"), summary);
