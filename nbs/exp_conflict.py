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
# # Timesteps conflict (Figure 2)
#
# The paper's Section 3.2 motivates treating diffusion training as multi-task learning: fine-tuning a model on one band
# of timesteps ($[100, 200)$, $[200, 300)$ or $[300, 400)$) helps the neighbouring timesteps but hurts distant ones
# (the paper's Figure 2, a heatmap of the loss change). Here: pre-train the converged benchmark's ViT (min-SNR-5, x0,
# cosine, 2400 steps of 64, until its samples are digits), fine-tune a copy for 200 steps on each band alone with the
# same loss and optimiser settings, and measure the unweighted x0 error in ten bins of 100 timesteps on a fixed
# evaluation set (2560 samples: the same images, timesteps and noise before and after), three seeds.
# Each seed is one `ConflictSpec` of `minsnr.experiments`, computed by `timestep_conflict`; its result lies in the
# experiments' result store (`book/results/conflict/`, one file per seed, named by a hash of the full spec), so a re-run
# reads it and a changed setting computes anew.
#
# ```bash
# papermill nbs/exp_conflict.ipynb nbs/exp_conflict.ipynb --cwd .
# ```

# %% tags=["parameters"]
seeds = [0, 1, 2]  # pre-training seeds
finetune_steps = 200  # optimizer steps on each band
run_missing = True  # False: only read stored results
quick = False  # `make book`: compute at most one missing seed, read the others from the stored results
results_dir = "book/results"  # the result store (committed)
runs_dir = "runs/experiments"  # checkpoints (not committed)

# %% tags=["remove-cell"]
import dataclasses
import warnings

import numpy as np
from IPython.display import Markdown, display

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notebook bar, which we do not use
from minsnr.core import atomic_write_json
from minsnr.experiments import converged_conflict_specs, run_suite
from minsnr.plotting import book_style, figure, markdown_table

book_style()
COMMAND = "papermill nbs/exp_conflict.ipynb nbs/exp_conflict.ipynb --cwd ."
limit = (1 if quick else None) if run_missing else 0
specs = [dataclasses.replace(s, finetune_steps=finetune_steps) for s in converged_conflict_specs(tuple(seeds))]
results = [r for r in run_suite(specs, results_dir, runs_dir, limit=limit, command=COMMAND) if r is not None]
bands = list(results[0]["relative_change"])
change = np.array([[r["relative_change"][b] for b in bands] for r in results])  # [seed, band, bin]

# %% mystnb={"figure": {"caption": "Relative change of the unweighted x0 error in each timestep bin (columns) after fine-tuning on one band (rows), in percent, mean over three seeds. Blue: the loss fell, red: it rose. Tuning on a band helps it and its neighbours and hurts distant bins.", "name": "fig-conflict-heatmap"}} tags=["hide-input"]
mean = change.mean(0) * 100
vmax = np.abs(mean).max()
fig, ax = figure(1, 2.6)
image = ax.imshow(mean, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
for i in range(mean.shape[0]):
    for j in range(mean.shape[1]):
        ax.text(j, i, f"{mean[i, j]:+.0f}", ha="center", va="center", fontsize=9,
                color="white" if abs(mean[i, j]) > 0.6 * vmax else "black")
ax.set_xticks(range(10), [f"{b * 100}–{(b + 1) * 100}" for b in range(10)], rotation=30)
ax.set_yticks(range(len(bands)), [f"tuned on [{b.replace('-', ', ')})" for b in bands])
ax.set_xlabel("timestep bin where the loss is measured")
fig.colorbar(image, ax=ax, label="loss change (%)");


# %% tags=["hide-input"]
def mean_range(values) -> str: return f"{values.mean():+.1f} [{values.min():+.1f}, {values.max():+.1f}]"


rows = []
for b, band in enumerate(bands):
    low = int(band.split("-")[0]) // 100
    rows.append([f"[{band.replace('-', ', ')})", mean_range(change[:, b, low] * 100), mean_range(change[:, b, 7:].mean(1) * 100)])
display(Markdown(markdown_table(["tuned on", "change in its own bin (%)", "change in bins 700–999 (%)"], rows)))
atomic_write_json(f"{results_dir}/summary/conflict.json",
                  {"bands": bands, "mean_change_percent": mean.round(2).tolist(), "seeds": len(results)});

# %% [markdown] tags=[]
# **What we see.** As in the paper's Figure 2, fine-tuning on one band lowers the loss in that band and its
# neighbours and raises it far away ({numref}`fig-conflict-heatmap`), here on a model whose samples are digits: tuning on
# $[100, 200)$ lowers the error in $[0, 300)$ in all three seeds and raises it in every bin from 400 on, by about 20 % in
# $[700, 1000)$; tuning on $[200, 300)$ helps $[100, 400)$ and hurts both ends (about +30 % in the cleanest and the
# noisiest bin); tuning on $[300, 400)$ helps $[200, 600)$ and hurts both ends, most of all the cleanest bin $[0, 100)$,
# whose small error nearly doubles. The table gives the change in the tuned band itself and, averaged, in the three
# noisiest bins (mean and [min, max] over the seeds). The timesteps are competing tasks for the shared weights, which is
# the paper's motivation for treating the loss weighting as a multi-task problem (next page).
