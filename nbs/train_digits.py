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
# # Training on the bundled digits
#
# The CPU default: a tiny ViT (`vit_tiny`, 0.84M parameters) learns scikit-learn's 8×8 handwritten digits with the paper's
# loss (x0 target, min-SNR-5, cosine schedule, uniform timesteps, label dropout 0.15), a run of minutes on a CPU. The
# recipe is the file `configs/digits.yaml`, one `TrainConfig` field a line with its source; the notebook's parameters
# replace a few of its values. Run it with papermill and change any of them:
#
# ```bash
# papermill nbs/train_digits.ipynb out.ipynb -p steps 2000 -y "overrides: {weighting: const, gamma: null}"
# ```
#
# Re-running resumes from the newest checkpoint in `out_dir`. The outputs below are from the run we did with the
# parameters shown.

# %% tags=["parameters"]
config_file = "configs/digits.yaml"  # the recipe: TrainConfig fields, one a line, each with its source
steps = None  # optimizer steps; None: the recipe's (1500)
out_dir = None  # run folder (relative to where the notebook runs); None: the recipe's (runs/digits)
gpus = 1  # processes (torchrun when > 1)
overrides = {}  # any other TrainConfig fields, e.g. {"weighting": "const", "gamma": None} or {"target": "eps"}
sample_steps = 30  # Heun steps per sample (the paper's ablation setting)
grid_per_class = 10  # samples per class in the picture
eval_per_class = 100  # samples per class for FD-digits and class accuracy

# %% [markdown] tags=[]
# ## The recipe
#
# Every field the recipe file sets, its value, and where the value comes from; the values this notebook's parameters
# replace are marked.

# %% tags=[]
import json
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from minsnr.cli import launch, load_train_config, recipe_table

given = {k: v for k, v in {"steps": steps, "out_dir": out_dir}.items() if v is not None} | overrides  # None: the recipe's
display(Markdown(recipe_table(config_file, **given)))

# %% [markdown] tags=[]
# ## Training
#
# `load_train_config` builds the run's `TrainConfig` from the file and the parameters above; `launch` trains it in a
# child process and echoes the run's summary.

# %% tags=[]
config = load_train_config(config_file, **given)
summary = launch(config, gpus)

# %% [markdown] tags=[]
# ## Loss
#
# The weighted training loss, and the unweighted x0-space error in ten timestep bins (the paper's Figure 6): the noisiest
# bins (large t) are hardest and improve slowest.

# %% tags=["hide-input"]
records = [json.loads(line) for line in (Path(config.out_dir) / "metrics.jsonl").read_text().splitlines()]
records = [r for r in records if r["step"] <= config.steps]
step_axis = [r["step"] for r in records]
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
left.plot(step_axis, [r["loss"] for r in records])
left.set(xlabel="step", ylabel=f"{config.weighting} loss ({config.target})", yscale="log", title="training loss")
bins = len(records[0]["x0_mse_by_bin"])
for b in range(bins):
    values = [(s, r["x0_mse_by_bin"][b]) for s, r in zip(step_axis, records) if r["x0_mse_by_bin"][b] is not None]
    right.plot(*zip(*values), label=f"t ∈ [{b * 1000 // bins}, {(b + 1) * 1000 // bins})", color=plt.cm.viridis(b / (bins - 1)))
right.set(xlabel="step", ylabel="unweighted ‖x0 − x̂0‖² / d", yscale="log", title="x0 error by timestep bin")
right.legend(fontsize=6, ncol=2)
plt.tight_layout()
print(f"loss: first log {records[0]['loss']:.4f}, last log {records[-1]['loss']:.4f}")

# %% [markdown] tags=[]
# ## Samples
#
# One row per class, ten seeds each, drawn from the EMA weights with 30 Heun steps (the paper's ablation setting) and no
# guidance.

# %% tags=["hide-input"]
import torch

from minsnr.sampler import generate
from minsnr.schedule import get_schedule
from minsnr.trainer import load_run

ema_model, run_config = load_run(config.out_dir)
classes = [c for c in range(10) for _ in range(grid_per_class)]
images, _, _ = generate(ema_model, get_schedule(run_config.schedule, run_config.num_timesteps), run_config.target,
                        range(len(classes)), classes=classes, num_steps=sample_steps, batch_size=len(classes))
grid = images.view(10, grid_per_class, 8, 8).permute(0, 2, 1, 3).reshape(80, 8 * grid_per_class)
plt.figure(figsize=(4, 4))
plt.imshow(-grid, cmap="gray")
plt.axis("off")
plt.title("EMA samples, one class per row");

# %% [markdown] tags=[]
# ## Quality: FD-digits and class accuracy
#
# Generated digits are compared with the training digits in the features of a small classifier trained on the digits and
# shipped with `minsnr` (see the FID page): a Fréchet distance, **FD-digits** (not FID: the features are not Inception's),
# and the share of samples that the classifier assigns to the class they were drawn for. 1000 samples, 100 per class,
# 30 Heun steps, no guidance; for scale, the validation digits score the FD-digits printed below them.

# %% tags=[]
from minsnr.data import make_dataset
from minsnr.fid import class_accuracy, fd_bundled

eval_classes = [c for c in range(10) for _ in range(eval_per_class)]
samples, _, _ = generate(ema_model, get_schedule(run_config.schedule, run_config.num_timesteps), run_config.target,
                         range(1000, 1000 + len(eval_classes)), classes=eval_classes, num_steps=sample_steps, batch_size=250)
val_set = make_dataset("digits", split="val")  # built once: each call re-reads and re-splits the digits
validation = torch.stack([val_set[i][0] for i in range(len(val_set))])
print(f"FD-digits of {len(samples)} EMA samples:      {fd_bundled(samples, 'digits'):.3f}")
print(f"class accuracy of the samples:      {class_accuracy(samples, torch.tensor(eval_classes), 'digits'):.3f}")
print(f"FD-digits of the validation digits: {fd_bundled(validation, 'digits'):.3f} (reference point)")
