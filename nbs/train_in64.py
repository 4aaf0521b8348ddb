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

# %% [markdown]
# # Training on ImageNet-64 pixels
#
# The paper's ImageNet 64×64 setting (its Table 4): ViT-L/4 (21 layers, as U-ViT) on 64×64 pixels with ADM's
# preprocessing (resize, centre crop, random horizontal flip), **ε-prediction** with min-SNR-5 (whose ε-space weight is
# $\min(5/\mathrm{SNR}, 1)$), AdamW $10^{-4}$ with betas (0.99, 0.99), weight decay 0.03, global batch 1024, EMA 0.9999,
# label dropout 0.15. The paper reports FID 2.28 with 20 Heun steps (the paper's number).
#
# ```bash
# papermill nbs/train_in64.ipynb runs/in64.ipynb -p data_dir /data/imagenet/train -p gpus 8
# ```

# %% tags=["parameters"]
data_dir = None  # ImageNet train folder with one sub-folder per class (required)
gpus = 1  # GPUs to train on (one machine)
model = "vit_l"  # ViT-L/4
target = "eps"  # the paper's ImageNet-64 target
weighting = "min-snr"  # loss weighting
gamma = 5.0  # γ
steps = 1_000_000  # optimizer steps
global_batch = 1024  # images per step over all GPUs
grad_accum = 1  # micro-batches per step
precision = "bf16"  # 'bf16', 'fp16' (the paper's) or 'fp32'
compile = True  # torch.compile
num_workers = 8  # data-loading processes per GPU
seed = 0  # weights, data order, noise
log_every = 100  # steps between metric lines
ckpt_every = 10_000  # steps between checkpoints
out_dir = "runs/in64_vit_l_eps_minsnr5"  # run folder (relative to where the notebook runs)

# %%
from pathlib import Path

from minsnr.cli import launch
from minsnr.trainer import TrainConfig

if data_dir is None or not Path(data_dir).is_dir():
    raise FileNotFoundError(f"data_dir={data_dir!r}: pass the ImageNet class-folder tree (-p data_dir …)")
config = TrainConfig(dataset="imagefolder", data_dir=data_dir, data_options={"image_size": 64, "hflip": True},
                     model=model, target=target, weighting=weighting, gamma=gamma, lr=1e-4, betas=(0.99, 0.99),
                     weight_decay=0.03, ema_decay=0.9999, ema_warmup_power=None, class_drop_prob=0.15, global_batch=global_batch,
                     grad_accum=grad_accum, steps=steps, precision=precision, compile=compile, num_workers=num_workers,
                     seed=seed, log_every=log_every, ckpt_every=ckpt_every, out_dir=out_dir, progress=False)
launch(config, gpus)
