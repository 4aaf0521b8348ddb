# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
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
# # Convergence across weightings and targets (Figures 5 and 6)
#
# The paper's Figure 5 trains ViT-B on ImageNet-256 latents with four loss weightings (const, SNR, max-SNR-1 and
# min-SNR-5) for each of three network targets (x0, ε, v) and plots FID against training steps; min-SNR-5 converges
# fastest for every target, and reaches FID 10 **3.4× sooner** than the previous weighting (the paper's numbers).
# Figure 6 shows why: the unweighted x0 error in four timestep ranges during training.
#
# Here the same 12 combinations are trained on the digits benchmark of `minsnr.experiments` (a 0.22M-parameter ViT,
# 1000 steps of 64 digits, three seeds each: 36 runs), and quality is FD-digits of 400 EMA samples measured 7 times
# during each run. Run it (or finish it) with
#
# ```bash
# papermill nbs/exp_convergence.ipynb nbs/exp_convergence.ipynb --cwd . -p workers 2
# ```
#
# Each run writes `book/results/digits/<run>.json` (its spec, seed, evaluations and training log); runs whose result
# exists are not trained again. The outputs below are from the runs we did (the wall time of each run is in its file:
# about two minutes on one core of a 2-core CPU).

# %% tags=["parameters"]
seeds = [0, 1, 2]  # training seeds
workers = 1  # runs trained at the same time
max_new_runs = None  # train at most this many missing runs now (None: all; 0: only read stored results)
quick = False  # `make book`: train at most 2 missing runs, read everything else from the stored results
results_dir = "book/results"  # result files (committed)
runs_dir = "runs/experiments"  # checkpoints (not committed)

# %% tags=[]
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from minsnr.experiments import PAPER_STRATEGIES, convergence_specs, run_suite, speedup

specs = convergence_specs(tuple(seeds))
results = run_suite(specs, results_dir, runs_dir, workers=workers, limit=2 if quick else max_new_runs)
done = {(s.config["target"], s.config["weighting"], s.seed): r for s, r in zip(specs, results) if r is not None}
print(f"{len(done)} of {len(specs)} runs have results")
TARGETS = ("x0", "eps", "v")
LABELS = {"const": "const", "snr": "SNR", "max-snr": "max-SNR-1", "min-snr": "min-SNR-5"}
COLORS = {"const": "tab:blue", "snr": "tab:orange", "max-snr": "tab:green", "min-snr": "tab:red"}
diverged = [name for name, r in ((s.name, done.get((s.config["target"], s.config["weighting"], s.seed))) for s in specs)
            if r is not None and r["status"] != "finished"]
print("diverged runs:", diverged or "none")


def curves(target, weighting, key="fd"):
    "Evaluation steps and a [seeds, steps] array of `key` for one combination."
    runs = [done[(target, weighting, s)] for s in seeds if (target, weighting, s) in done]
    if not runs: return None, None
    steps = [e["step"] for e in runs[0]["evals"]]
    return np.array(steps), np.array([[e[key] for e in r["evals"]] for r in runs])


# %% [markdown] tags=[]
# ## Figure 5: FD-digits during training
#
# Lines: the mean over seeds; bands: min to max over the seeds (log scale).

# %% tags=[]
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
for ax, target in zip(axes, TARGETS):
    for weighting, _ in PAPER_STRATEGIES:
        steps, fd = curves(target, weighting)
        if steps is None: continue
        ax.plot(steps, fd.mean(0), color=COLORS[weighting], label=f"{LABELS[weighting]} ({len(fd)} seeds)")
        ax.fill_between(steps, fd.min(0), fd.max(0), color=COLORS[weighting], alpha=0.2)
    ax.set(title=f"target {target}", xlabel="training step", yscale="log")
axes[0].set_ylabel("FD-digits (400 EMA samples)")
axes[0].legend(fontsize=8)
plt.tight_layout()


# %% [markdown] tags=[]
# The final FD and class accuracy (mean and min–max over seeds):

# %% tags=[]
def spread(values, fmt="{:.1f}"):
    values = np.asarray(values, dtype=float)
    return f"{fmt.format(values.mean())} ({fmt.format(values.min())}–{fmt.format(values.max())})"

rows = []
for target in TARGETS:
    for weighting, _ in PAPER_STRATEGIES:
        _, fd = curves(target, weighting)
        _, acc = curves(target, weighting, "class_acc")
        if fd is None: continue
        rows.append((target, LABELS[weighting], len(fd), spread(fd[:, -1]), spread(fd.min(1)), spread(acc[:, -1], "{:.2f}")))
print(f"{'target':6} {'weighting':10} {'seeds':5} {'final FD':>22} {'best FD':>22} {'class accuracy':>18}")
for row in rows: print(f"{row[0]:6} {row[1]:10} {row[2]:5} {row[3]:>22} {row[4]:>22} {row[5]:>18}")

# %% [markdown] tags=[]
# ## The speed-up of min-SNR-5
#
# For each target and each baseline, Eq. (speed-up) of the experiments page: the steps the baseline needs to reach its
# best FD over the steps min-SNR-5 needs to reach that same FD, per seed (min-SNR-5 and the baseline with the same seed),
# then the mean and the min–max over seeds. "≤" marks seeds where min-SNR-5 never reached the baseline's best FD (the
# ratio is then an upper bound); a ratio below 1 means min-SNR-5 was slower.

# %% tags=[]
speedups = {}
print(f"{'target':6} {'baseline':10} {'speed-up of min-SNR-5, per seed':38} {'mean (min–max)':>20}")
for target in TARGETS:
    for weighting, _ in PAPER_STRATEGIES[:3]:
        per_seed = []
        for s in seeds:
            a, b = done.get((target, "min-snr", s)), done.get((target, weighting, s))
            if a and b and a["evals"] and b["evals"]: per_seed.append(speedup(a["evals"], b["evals"]))
        if not per_seed: continue
        ratios = [p["ratio"] for p in per_seed]
        speedups[(target, weighting)] = ratios
        shown = ", ".join(("" if p["reached"] else "≤") + f"{p['ratio']:.2f}" for p in per_seed)
        print(f"{target:6} {LABELS[weighting]:10} {shown:38} {spread(ratios, '{:.2f}'):>20}")

# %% [markdown] tags=[]
# **What we see.** With the x0 target min-SNR-5 reaches every baseline's best FD-digits sooner in all three seeds:
# 1.6× (1.5–1.7) sooner than const and 2.3× sooner than SNR and max-SNR-1. With ε and v it is 3.7–3.9× sooner than
# const (and than max-SNR-1 with ε, which is const-like at high noise: its ε weight is $\max(1, 1/\mathrm{SNR})$), but
# not faster than the plain ε loss (SNR weighting in x0 terms) with ε or v: there the ratios straddle 1 and two seeds of
# three never reach SNR's best FD within the run (the "≤" bounds, which the mean includes). So the paper's ordering
# holds against const, SNR-with-x0 and max-SNR-1, and its 3.4× (the paper's number) is of the same size as what we
# measure against const with ε and v, but on this benchmark min-SNR-5 does not beat the standard ε loss. Caveat: after
# 800 steps the small ViT's samples are far from digits (FD-digits 190–1800, class accuracy near chance 0.1; validation
# digits score 6), so these curves describe the first phase of training; the UNet page shows the same comparison where
# the samples are good.

# %% [markdown] tags=[]
# ## Figure 6: the unweighted x0 error by timestep range
#
# The training log of every run has the unweighted $\lVert \mathbf{x}_0 - \hat{\mathbf{x}}_0 \rVert^2/d$ averaged
# over the samples of each 100-timestep bin since the previous log line (every 50 steps). The paper's Figure 6 shows the
# ranges $[0,100)$, $[200,300)$, $[600,700)$ and $[800,900)$; here the x0 target, mean over seeds.

# %% tags=[]
fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
for ax, b in zip(axes, (0, 2, 6, 8)):
    for weighting, _ in PAPER_STRATEGIES:
        runs = [done[("x0", weighting, s)] for s in seeds if ("x0", weighting, s) in done]
        if not runs: continue
        steps = [m["step"] for m in runs[0]["metrics"]]
        err = np.array([[m["x0_mse_by_bin"][b] if m["x0_mse_by_bin"][b] is not None else np.nan for m in r["metrics"]] for r in runs])
        ax.plot(steps, np.nanmean(err, 0), color=COLORS[weighting], label=LABELS[weighting])
    ax.set(title=f"t ∈ [{b * 100}, {(b + 1) * 100})", xlabel="training step", yscale="log")
axes[0].set_ylabel("unweighted x0 MSE")
axes[0].legend(fontsize=8)
plt.tight_layout()

# %% tags=[]
final_err = {}
for weighting, _ in PAPER_STRATEGIES:
    runs = [done[("x0", weighting, s)] for s in seeds if ("x0", weighting, s) in done]
    if runs:  # mean of the last 100 steps (two log lines), per bin, over seeds
        final_err[weighting] = np.mean([[np.mean([m["x0_mse_by_bin"][b] for m in r["metrics"][-2:]]) for b in range(10)] for r in runs], 0)
print("unweighted x0 MSE at the end of training, bins of 100 timesteps (x0 target):")
for weighting, values in final_err.items(): print(f"{LABELS[weighting]:10}", " ".join(f"{v:.4f}" for v in values))

# %% [markdown] tags=[]
# **What we see.** As in the paper's Figure 6, the SNR and max-SNR-1 weightings learn the clean end best (lowest error
# in $[0, 100)$) and the noisy end worst (4–5× const's error in $[900, 1000)$), and const does the opposite. min-SNR-5
# has the lowest error of the four in $[100, 300)$, ties with const in $[300, 400)$, and elsewhere sits between them:
# close to SNR at the clean end and close to const at the noisy end. The paper says min-SNR-5 has the lowest loss in all
# four ranges it shows; here it is never far from the best, but const is lower at high noise (0.29 against 0.41 in
# $[900, 1000)$) and SNR at the cleanest timesteps.

# %% [markdown] tags=[]
# ## On photo patches
#
# The same question on natural-image crops (32×32×3 patches of six scikit-image photographs, labelled by photograph;
# `minsnr.experiments.photo_specs`): const against min-SNR-5 with the x0 target, 600 steps, FD in the features of the
# photo-patches classifier shipped with `minsnr` (FD-photo-patches; that classifier is weak, 0.78 validation accuracy,
# so this is a coarser measure than FD-digits), 300 samples, three seeds.

# %% tags=[]
from minsnr.experiments import photo_specs

photo = [(s, r) for s, r in zip(photo_specs(tuple(seeds)), run_suite(photo_specs(tuple(seeds)), results_dir, runs_dir,
                                                                      workers=workers, limit=2 if quick else max_new_runs)) if r]
photo_runs = {}
for s, r in photo: photo_runs.setdefault(s.config["weighting"], {})[s.seed] = r
fig, ax = plt.subplots(figsize=(5, 3.2))
for weighting, runs in photo_runs.items():
    rs = list(runs.values())
    steps = [e["step"] for e in rs[0]["evals"]]
    fd = np.array([[e["fd"] for e in r["evals"]] for r in rs])
    ax.plot(steps, fd.mean(0), color=COLORS[weighting], label=f"{LABELS[weighting]} ({len(rs)} seeds)")
    ax.fill_between(steps, fd.min(0), fd.max(0), color=COLORS[weighting], alpha=0.2)
ax.set(xlabel="training step", ylabel="FD-photo-patches", yscale="log", title="photo patches, x0 target")
ax.legend(fontsize=8)
plt.tight_layout()
if "min-snr" in photo_runs and "const" in photo_runs:
    ratios = [speedup(photo_runs["min-snr"][s]["evals"], photo_runs["const"][s]["evals"]) for s in seeds
              if s in photo_runs["min-snr"] and s in photo_runs["const"]]
    print("speed-up of min-SNR-5 over const, per seed:", ", ".join(("" if p["reached"] else "≤") + f"{p['ratio']:.2f}" for p in ratios),
          "| mean (min–max):", spread([p["ratio"] for p in ratios], "{:.2f}"))
    for w in ("const", "min-snr"):
        print(f"{LABELS[w]:10} final FD-photo-patches {spread([r['evals'][-1]['fd'] for r in photo_runs[w].values()])}, "
              f"class accuracy {spread([r['evals'][-1]['class_acc'] for r in photo_runs[w].values()], '{:.2f}')}")

# %% [markdown] tags=[]
# **What we see.** On photo patches the result is reversed: min-SNR-5 is slower than const in all three seeds (it never
# reaches const's best FD-photo-patches within 600 steps) and ends at 672 (630–697) against const's 306 (256–346). Both
# are early in training (class accuracy 0.21 for six classes, chance 0.17) and measured with a weak feature net, so this
# is one short-run observation, reported as measured: the x0-target advantage we see on digits does not carry over to
# these natural-image crops at this length.

# %% [markdown] tags=[]
# ## Summary for the front page

# %% tags=[]
summary = {"runs": len(done), "seeds": len(seeds),
           "speedup": {f"{t}/{w}": {"mean": float(np.mean(r)), "min": float(np.min(r)), "max": float(np.max(r)), "n": len(r)}
                       for (t, w), r in speedups.items()},
           "final_fd": {f"{t}/{w}": float(curves(t, w)[1][:, -1].mean()) for t in TARGETS for w, _ in PAPER_STRATEGIES
                        if curves(t, w)[1] is not None}}
Path(results_dir, "summary").mkdir(parents=True, exist_ok=True)
Path(results_dir, "summary", "convergence.json").write_text(json.dumps(summary, indent=1) + "\n")
summary["speedup"]
