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
# # Timesteps conflict (Figure 2)
#
# The paper's Section 3.2 motivates treating diffusion training as multi-task learning: fine-tuning a model on one band
# of timesteps ($[100, 200)$, $[200, 300)$ or $[300, 400)$) helps the neighbouring timesteps but hurts distant ones
# (the paper's Figure 2, a heatmap of the loss change). Here: pre-train the digits benchmark model (min-SNR-5, x0,
# 800 steps), fine-tune a copy for 200 steps on each band alone, and measure the unweighted x0 error in ten bins of 100
# timesteps on a fixed evaluation set (2560 samples: the same images, timesteps and noise before and after), three seeds.
# `minsnr.experiments.timestep_conflict` does it and writes one result file per seed.
#
# ```bash
# papermill nbs/exp_conflict.ipynb nbs/exp_conflict.ipynb --cwd .
# ```

# %% tags=["parameters"]
seeds = [0, 1, 2]  # pre-training seeds
finetune_steps = 200  # optimizer steps on each band
run_missing = True  # False: only read stored results
quick = False  # `make book`: train at most one missing seed, read the others from the stored results
results_dir = "book/results"  # result files (committed)
runs_dir = "runs/experiments"  # checkpoints (not committed)

# %% tags=[]
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from minsnr.experiments import conflict_specs, timestep_conflict

results, trained = [], 0
for spec in conflict_specs(tuple(seeds)):
    path = Path(results_dir, spec.suite, f"{spec.name}.json")
    if path.is_file() or (run_missing and not (quick and trained >= 1)):
        trained += not path.is_file()
        results.append(timestep_conflict(spec, finetune_steps=finetune_steps, results_dir=results_dir, runs_dir=runs_dir))
print(f"{len(results)} seeds")
bands = list(results[0]["relative_change"])
change = np.array([[r["relative_change"][b] for b in bands] for r in results])  # [seed, band, bin]

# %% tags=[]
mean = change.mean(0) * 100
limit = np.abs(mean).max()
fig, ax = plt.subplots(figsize=(9, 2.8))
image = ax.imshow(mean, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
for i in range(mean.shape[0]):
    for j in range(mean.shape[1]):
        lo, hi = change[:, i, j].min() * 100, change[:, i, j].max() * 100
        ax.text(j, i, f"{mean[i, j]:+.0f}%\n[{lo:+.0f}, {hi:+.0f}]", ha="center", va="center", fontsize=6.5)
ax.set_xticks(range(10), [f"[{b * 100},{(b + 1) * 100})" for b in range(10)], fontsize=7, rotation=30)
ax.set_yticks(range(len(bands)), [f"tuned on [{b.replace('-', ', ')})" for b in bands], fontsize=8)
ax.set_xlabel("timestep bin where the loss is measured")
fig.colorbar(image, ax=ax, label="loss change (%)")
ax.set_title(f"relative change of the unweighted x0 error after fine-tuning ({len(results)} seeds: mean [min, max])", fontsize=9)
plt.tight_layout()

# %% tags=[]
for b, band in enumerate(bands):
    low = int(band.split("-")[0]) // 100
    own = change[:, b, low] * 100
    far = change[:, b, 7:] .mean(1) * 100
    print(f"tuned on [{band.replace('-', ', ')}): its own bin {own.mean():+.1f}% (min {own.min():+.1f}, max {own.max():+.1f}); "
          f"bins 700–999 {far.mean():+.1f}% (min {far.min():+.1f}, max {far.max():+.1f})")
Path(results_dir, "summary").mkdir(parents=True, exist_ok=True)
Path(results_dir, "summary", "conflict.json").write_text(json.dumps(
    {"bands": bands, "mean_change_percent": mean.round(2).tolist(), "seeds": len(results)}, indent=1) + "\n")

# %% [markdown] tags=[]
# **What we see.** As in the paper's Figure 2, fine-tuning on one band lowers the loss in that band and its
# neighbours and raises it far away: in all three seeds, tuning on $[100, 200)$ lowers the error in $[0, 200)$ and raises
# it in every bin from 300 on, by about 40 % in $[700, 1000)$; tuning on $[300, 400)$ helps $[200, 600)$ and hurts both
# ends, most of all the cleanest bin $[0, 100)$ (its error more than doubles, from a small value). The timesteps are
# competing tasks for the shared weights, which is the paper's motivation for treating the loss weighting as a
# multi-task problem (next page).
