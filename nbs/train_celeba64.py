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
# # Training on CelebA 64×64
#
# The paper's unconditional CelebA-64 setting (its Table 3): ViT-S or the ADM-style UNet on 64×64 faces with ScoreSDE's
# preprocessing (centre crop 140, resize to 64), x0-prediction with min-SNR-5, AdamW $10^{-4}$ after a 5000-step linear
# warm-up, batch 128, 500K steps, EMA 0.9999. Betas (0.99, 0.99) for the ViT, (0.9, 0.999) for the UNet (Appendix C.2).
# The paper reports FID 2.14 (ViT-S) and 1.60 (UNet) (the paper's numbers).
#
# ```bash
# papermill nbs/train_celeba64.ipynb runs/celeba.ipynb -p data_dir /data/celeba/img_align_celeba -p backbone unet
# ```

# %% tags=["parameters"]
data_dir = None  # folder of CelebA's aligned images, img_align_celeba (required)
gpus = 1  # GPUs to train on (one machine)
backbone = "vit"  # 'vit' (ViT-S/4) or 'unet' (the ablation UNet at 64×64×3)
target = "x0"  # 'x0', 'eps' or 'v'
weighting = "min-snr"  # loss weighting
gamma = 5.0  # γ
steps = 500_000  # optimizer steps
global_batch = 128  # images per step over all GPUs
precision = "bf16"  # 'bf16', 'fp16' (the paper's) or 'fp32'
compile = True  # torch.compile
num_workers = 8  # data-loading processes per GPU
seed = 0  # weights, data order, noise
log_every = 100  # steps between metric lines
ckpt_every = 10_000  # steps between checkpoints
out_dir = None  # run folder; None: runs/celeba64_<backbone>_<target>_<weighting>

# %%
from pathlib import Path

from minsnr.cli import launch
from minsnr.trainer import TrainConfig

if data_dir is None or not Path(data_dir).is_dir():
    raise FileNotFoundError(f"data_dir={data_dir!r}: pass the folder of CelebA's aligned images (-p data_dir …)")
if backbone not in ("vit", "unet"): raise ValueError(f"backbone must be 'vit' or 'unet', got {backbone!r}")
model, betas = ("vit_s", (0.99, 0.99)) if backbone == "vit" else ("unet_ablation", (0.9, 0.999))
config = TrainConfig(dataset="celeba64", data_dir=data_dir, data_options={"hflip": True},
                     model=model, target=target, weighting=weighting, gamma=gamma, lr=1e-4, betas=betas, warmup_steps=5000,
                     weight_decay=0.03, ema_decay=0.9999, ema_warmup_power=None, class_drop_prob=0.0, global_batch=global_batch, steps=steps,
                     precision=precision, compile=compile, num_workers=num_workers, seed=seed, log_every=log_every,
                     ckpt_every=ckpt_every, out_dir=out_dir or f"runs/celeba64_{backbone}_{target}_{weighting}", progress=False)
launch(config, gpus)
