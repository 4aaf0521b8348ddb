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
# The paper's ImageNet 64×64 setting (its Table 4), `configs/in64_vit_l4.yaml`: ViT-L/4 (21 layers, as U-ViT) on 64×64
# pixels with ADM's preprocessing (resize, centre crop, random horizontal flip), **ε-prediction** with min-SNR-5 (whose
# ε-space weight is $\min(5/\mathrm{SNR}, 1)$), AdamW $10^{-4}$ with betas (0.99, 0.99), weight decay 0.03, global
# batch 1024, EMA 0.9999, label dropout 0.15, 800K steps. The paper reports FID 2.28 with 20 Heun steps. The table below
# lists every value with its source.
#
# ```bash
# papermill nbs/train_in64.ipynb runs/in64.ipynb -p data_dir /data/imagenet/train -p gpus 8
# ```

# %% tags=["parameters"]
config_file = "configs/in64_vit_l4.yaml"  # the recipe: TrainConfig fields, one a line, each with its source
data_dir = None  # ImageNet train folder with one sub-folder per class (required)
out_dir = None  # run folder (relative to where the notebook runs); None: runs/<recipe name>
gpus = 1  # GPUs to train on per machine (torchrun --nproc_per_node)
nnodes = 1  # machines: run this notebook on each, with the same rdzv_endpoint
rdzv_endpoint = None  # host:port every machine reaches (node 0 and a free port), when nnodes > 1
steps = None  # optimizer steps; None: the recipe's
overrides = {}  # other TrainConfig fields, e.g. {"grad_accum": 4} for GPUs with less memory, {"precision": "fp16"} (the paper's)

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
    raise FileNotFoundError(f"data_dir={data_dir!r}: pass the ImageNet class-folder tree (-p data_dir …)")
config = load_train_config(config_file, **given)
summary = launch(config, gpus, nnodes, rdzv_endpoint)
