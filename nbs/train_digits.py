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
# loss (x0 target, min-SNR-5, cosine schedule, uniform timesteps, label dropout 0.15). A few minutes on two CPU cores.
# Run it with papermill and change any parameter:
#
# ```bash
# papermill nbs/train_digits.ipynb out.ipynb -p steps 2000 -p weighting const
# ```
#
# Re-running resumes from the newest checkpoint in `out_dir`. The outputs below are from the run we did with the
# parameters shown.

# %% tags=["parameters"]
steps = 1000  # optimizer steps
global_batch = 128  # images per step
model = "vit_tiny"  # a preset of minsnr.vit or minsnr.unet
target = "x0"  # 'x0', 'eps' or 'v'
weighting = "min-snr"  # loss weighting strategy
gamma = 5.0  # its γ
lr = 1e-3  # AdamW learning rate (the tiny model tolerates more than the paper's 1e-4)
seed = 0  # weights, data order, noise
precision = "fp32"  # 'fp32', 'bf16' or 'fp16'
gpus = 1  # processes (torchrun when > 1)
out_dir = "runs/digits"  # run folder (relative to where the notebook runs)

# %% tags=[]
import json
from pathlib import Path

import matplotlib.pyplot as plt

from minsnr.trainer import TrainConfig, launch

config = TrainConfig(dataset="digits", model=model, target=target, weighting=weighting, gamma=gamma, lr=lr,
                     global_batch=global_batch, steps=steps, seed=seed, precision=precision, out_dir=out_dir,
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

# %% [markdown]
# ## Samples
#
# One row per class, ten seeds each, drawn from the EMA weights with 30 Heun steps (the paper's ablation setting) and no
# guidance.

# %%
import torch

from minsnr.sampler import generate
from minsnr.schedule import get_schedule
from minsnr.trainer import load_run

ema_model, run_config = load_run(out_dir)
classes = [c for c in range(10) for _ in range(10)]
images, _, _ = generate(ema_model, get_schedule(run_config.schedule, run_config.num_timesteps), run_config.target,
                        range(100), classes=classes, num_steps=30, batch_size=100)
grid = images.view(10, 10, 8, 8).permute(0, 2, 1, 3).reshape(80, 80)
plt.figure(figsize=(4, 4))
plt.imshow(-grid, cmap="gray")
plt.axis("off")
plt.title("EMA samples, one class per row");
