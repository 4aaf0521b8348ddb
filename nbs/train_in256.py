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
# # Training on ImageNet-256 latents: the paper's recipe
#
# ViT-B/2 on 32×32×4 SD-VAE latents of ImageNet 256×256, predicting x0 with min-SNR-5 loss weighting: AdamW, learning
# rate $10^{-4}$, betas (0.99, 0.99), weight decay 0.03, global batch 256, EMA 0.9999, label dropout 0.15, cosine schedule
# with T = 1000, uniform timesteps (the paper's Section 4 and the official `vit-b_layer12_lr1e-4_099_099_pred_x0__min_snr_5`
# configuration). The paper trained in fp16; bf16 is the default here (no loss scaling needed), `precision="fp16"` is
# the paper's. ViT-XL/2 (`model="vit_xl"`) is the model of the headline FID 2.06.
#
# ```bash
# papermill nbs/train_in256.ipynb runs/in256.ipynb -p data_dir /data/imagenet256_latents -p gpus 8
# ```
#
# `data_dir` holds latents made by `minsnr.data` from ImageNet with the SD-VAE (`sd-vae-ft-mse`). Re-running the
# notebook resumes from the newest checkpoint in `out_dir`.

# %% tags=["parameters"]
data_dir = None  # folder of ImageNet-256 SD-VAE latents (required)
gpus = 1  # GPUs to train on, one machine (torchrun --nproc_per_node)
model = "vit_b"  # 'vit_b' (ablations) or 'vit_xl' (the FID 2.06 model)
model_kwargs = {}  # preset overrides
target = "x0"  # 'x0', 'eps' or 'v'
weighting = "min-snr"  # loss weighting
gamma = 5.0  # γ
steps = 1_000_000  # optimizer steps (the paper's ablations: 1M at batch 256)
global_batch = 256  # images per step over all GPUs
grad_accum = 1  # micro-batches per step, for GPUs with less memory
precision = "bf16"  # 'bf16' (default), 'fp16' (the paper's), 'fp32'
compile = True  # torch.compile
num_workers = 8  # data-loading processes per GPU
seed = 0  # weights, data order, noise
log_every = 100  # steps between metric lines
ckpt_every = 10_000  # steps between checkpoints
out_dir = "runs/in256_vit_b_x0_minsnr5"  # run folder (relative to where the notebook runs)

# %%
import json
from pathlib import Path

from minsnr.cli import launch
from minsnr.trainer import TrainConfig

if data_dir is None or not Path(data_dir).is_dir():
    raise FileNotFoundError(f"data_dir={data_dir!r}: pass the folder of ImageNet-256 SD-VAE latents (-p data_dir …)")
config = TrainConfig(dataset="latents", data_dir=data_dir, model=model, model_kwargs=model_kwargs, target=target,
                     weighting=weighting, gamma=gamma, lr=1e-4, betas=(0.99, 0.99), weight_decay=0.03, ema_decay=0.9999, ema_warmup_power=None,
                     class_drop_prob=0.15, global_batch=global_batch, grad_accum=grad_accum, steps=steps,
                     precision=precision, compile=compile, num_workers=num_workers, seed=seed, log_every=log_every,
                     ckpt_every=ckpt_every, out_dir=out_dir, progress=False)
summary = launch(config, gpus)
summary

# %%
records = [json.loads(line) for line in (Path(out_dir) / "metrics.jsonl").read_text().splitlines()]
print(f"{len(records)} metric lines; last: step {records[-1]['step']}, loss {records[-1]['loss']:.4f}, "
      f"{records[-1]['img_per_s']:.0f} img/s")
