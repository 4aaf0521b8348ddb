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
# loss (x0 target, min-SNR-5, cosine schedule, uniform timesteps, label dropout 0.15). About ten minutes on two CPU cores
# (the stored run took 16m39s while the machine was shared).
# Run it with papermill and change any parameter:
#
# ```bash
# papermill nbs/train_digits.ipynb out.ipynb -p steps 2000 -p weighting const
# ```
#
# Re-running resumes from the newest checkpoint in `out_dir`. The outputs below are from the run we did with the
# parameters shown.

# %% tags=["parameters"]
steps = 1500  # optimizer steps
global_batch = 128  # images per step
model = "vit_tiny"  # a preset of minsnr.vit or minsnr.unet
target = "x0"  # 'x0', 'eps' or 'v'
weighting = "min-snr"  # loss weighting strategy
gamma = 5.0  # its γ
lr = 1e-3  # AdamW learning rate (the tiny model tolerates more than the paper's 1e-4)
ema_decay = 0.995  # EMA of the weights: the paper's 0.9999 averages over ~10⁴ steps, longer than this whole run
ema_warmup_power = None  # None: a fixed decay, as in the stored run below; 2/3: the trainer's default warm-up
seed = 0  # weights, data order, noise
precision = "fp32"  # 'fp32', 'bf16' or 'fp16'
gpus = 1  # processes (torchrun when > 1)
out_dir = "runs/digits"  # run folder (relative to where the notebook runs)
sample_steps = 30  # Heun steps per sample (the paper's ablation setting)
grid_per_class = 10  # samples per class in the picture
eval_per_class = 100  # samples per class for FD-digits and class accuracy

# %% tags=[]
import json
from pathlib import Path

import matplotlib.pyplot as plt

from minsnr.cli import launch
from minsnr.trainer import TrainConfig

config = TrainConfig(dataset="digits", model=model, target=target, weighting=weighting, gamma=gamma, lr=lr,
                     global_batch=global_batch, steps=steps, ema_decay=ema_decay, ema_warmup_power=ema_warmup_power, seed=seed, precision=precision, out_dir=out_dir,
                     log_every=max(1, steps // 100), ckpt_every=max(1, steps // 4), progress=False)
summary = launch(config, gpus)
summary

# %% [markdown] tags=[]
# ## Loss
#
# The weighted training loss, and the unweighted x0-space error in ten timestep bins (the paper's Figure 6): the noisiest
# bins (large t) are hardest and improve slowest.

# %% tags=[]
records = [json.loads(line) for line in (Path(out_dir) / "metrics.jsonl").read_text().splitlines()]
records = [r for r in records if r["step"] <= steps]
step_axis = [r["step"] for r in records]
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
left.plot(step_axis, [r["loss"] for r in records])
left.set(xlabel="step", ylabel=f"{weighting} loss ({target})", yscale="log", title="training loss")
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

# %% tags=[]
import torch

from minsnr.sampler import generate
from minsnr.schedule import get_schedule
from minsnr.trainer import load_run

ema_model, run_config = load_run(out_dir)
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
