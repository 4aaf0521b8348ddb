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
# The paper's unconditional CelebA-64 setting (its Table 3): ViT-S (`configs/celeba64_vit_s.yaml`) or the ADM-style
# UNet of its ablations (`configs/celeba64_unet.yaml`) on 64×64 faces with ScoreSDE's preprocessing (centre crop 140,
# resize to 64), x0-prediction with min-SNR-5, AdamW $10^{-4}$ after a 5000-step linear warm-up, batch 128, 500K steps,
# EMA 0.9999. Betas (0.99, 0.99) for the ViT, (0.9, 0.999) for the UNet (Appendix C.2). The paper reports FID 2.14
# (ViT-S) and 1.60 (UNet). The table below lists every value with its source.
#
# ```bash
# papermill nbs/train_celeba64.ipynb runs/celeba.ipynb -p data_dir /data/celeba/img_align_celeba -p config_file configs/celeba64_unet.yaml
# ```

# %% tags=["parameters"]
config_file = "configs/celeba64_vit_s.yaml"  # the recipe: celeba64_vit_s.yaml (ViT-S/4) or celeba64_unet.yaml (the UNet)
data_dir = None  # folder of CelebA's aligned images, img_align_celeba (required)
out_dir = None  # run folder (relative to where the notebook runs); None: runs/<recipe name>
gpus = 1  # GPUs to train on per machine (torchrun --nproc_per_node)
nnodes = 1  # machines: run this notebook on each, with the same rdzv_endpoint
rdzv_endpoint = None  # host:port every machine reaches (node 0 and a free port), when nnodes > 1
steps = None  # optimizer steps; None: the recipe's
overrides = {}  # other TrainConfig fields, e.g. {"target": "eps"} or {"precision": "fp16"} (the paper's)

# %% [markdown]
# ## The recipe
#
# Every field the recipe file sets, its value, and where the value comes from; the values this notebook's parameters
# replace are marked.

# %%
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
    raise FileNotFoundError(f"data_dir={data_dir!r}: pass the folder of CelebA's aligned images (-p data_dir …)")
config = load_train_config(config_file, **given)
summary = launch(config, gpus, nnodes, rdzv_endpoint)
