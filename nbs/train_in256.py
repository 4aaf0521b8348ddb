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
# The paper's ImageNet 256×256 runs train on 32×32×4 SD-VAE latents, predicting x0 with min-SNR-5: ViT-B/2 for the
# ablations (`configs/in256_vit_b2.yaml`: 1M steps, the paper's Section 4.2 and the official
# `vit-b_layer12_lr1e-4_099_099_pred_x0__min_snr_5` script) and ViT-XL/2 for the headline FID 2.06
# (`configs/in256_vit_xl2.yaml`: about 7M steps, Section 4.3). Both: AdamW, learning rate $10^{-4}$, betas (0.99, 0.99),
# weight decay 0.03, global batch 256, EMA 0.9999, label dropout 0.15, cosine schedule with T = 1000, uniform timesteps.
# The paper trained in fp16; the recipes use bf16 (no loss scaling needed), `-y "overrides: {precision: fp16}"` is the
# paper's. The table below lists every value with its source.
#
# ```bash
# papermill nbs/train_in256.ipynb runs/in256.ipynb -p data_dir /data/imagenet256_latents -p gpus 8
# papermill nbs/train_in256.ipynb runs/in256_xl.ipynb -p config_file configs/in256_vit_xl2.yaml -p data_dir /data/imagenet256_latents -p gpus 8
# ```
#
# `data_dir` holds latents made by `encode_latents.ipynb` from ImageNet with the SD-VAE (`sd-vae-ft-mse`). Re-running the
# notebook resumes from the newest checkpoint in `out_dir`.

# %% tags=["parameters"]
config_file = "configs/in256_vit_b2.yaml"  # the recipe: in256_vit_b2.yaml (ViT-B/2, ablations) or in256_vit_xl2.yaml (ViT-XL/2, FID 2.06)
data_dir = None  # folder of ImageNet-256 SD-VAE latents (required)
out_dir = None  # run folder (relative to where the notebook runs); None: runs/<recipe name>
gpus = 1  # GPUs to train on per machine (torchrun --nproc_per_node)
nnodes = 1  # machines: run this notebook on each, with the same rdzv_endpoint
rdzv_endpoint = None  # host:port every machine reaches (node 0 and a free port), when nnodes > 1
steps = None  # optimizer steps; None: the recipe's
overrides = {}  # other TrainConfig fields, e.g. {"grad_accum": 2} for GPUs with less memory, {"precision": "fp16"} (the paper's)

# %% [markdown]
# ## The recipe
#
# Every field the recipe file sets, its value, and where the value comes from; the values this notebook's parameters
# replace are marked.

# %%
import json
from pathlib import Path

from IPython.display import Markdown, display

from minsnr.cli import launch, load_train_config, recipe_table

given = {"data_dir": data_dir, "out_dir": out_dir or f"runs/{Path(config_file).stem}", "steps": steps} | overrides
given = {k: v for k, v in given.items() if v is not None}  # None: the recipe's value
display(Markdown(recipe_table(config_file, **given)))

# %% [markdown]
# ## Training

# %%
if data_dir is None or not Path(data_dir).is_dir():
    raise FileNotFoundError(f"data_dir={data_dir!r}: pass the folder of ImageNet-256 SD-VAE latents (-p data_dir …)")
config = load_train_config(config_file, **given)
summary = launch(config, gpus, nnodes, rdzv_endpoint)

# %%
records = [json.loads(line) for line in (Path(config.out_dir) / "metrics.jsonl").read_text().splitlines()]
print(f"{len(records)} metric lines; last: step {records[-1]['step']}, loss {records[-1]['loss']:.4f}, "
      f"{records[-1]['img_per_s']:.0f} img/s")
