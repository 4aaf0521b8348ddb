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
# # Sampling and evaluation
#
# Load a finished run's EMA weights, draw images with EDM's Heun sampler, and evaluate them: FID-50K against ADM's
# reference statistics (Inception-v3 pool features through torch-fidelity, from a **local** weights file) for the real data
# sets, or FD and class accuracy in the shipped classifier's features for the bundled ones (FD-digits, never called FID).
# The defaults are the paper's ImageNet-256 settings: 50 Heun steps, classifier-free guidance 1.5, 50 000 images.
#
# ```bash
# papermill nbs/sample_fid.ipynb runs/fid.ipynb -p run_dir runs/in256_vit_b_x0_minsnr5 -p gpus 8 \
#     -p vae_dir /models/sd-vae-ft-mse -p reference /data/VIRTUAL_imagenet256_labeled.npz \
#     -p inception_weights /models/weights-inception-2015-12-05-6726825d.pth
# ```
#
# Images are written as `<seed>.png`, each batch as soon as it is done, so an interrupted job keeps its finished images and
# re-running draws only the missing seeds. The folder's `sampling.json` records the settings it was made with; sampling
# into it with other settings (say another `num_steps`) is refused, so two settings never mix in one folder: pick a new
# `out_dir` (the default folder name already carries the steps and the guidance scale). `checkpoint` samples any
# checkpoint of the run instead of its final weights.

# %% tags=["parameters"]
run_dir = None  # a finished training run (required)
out_dir = None  # where the PNGs go; None: <run_dir>/samples_<num_steps>steps_cfg<cfg_scale>[_<checkpoint>_<weights>]
num_images = 50_000  # images to draw and evaluate (seeds seed_start …)
seed_start = 0  # first seed
checkpoint = None  # a checkpoint of the run (path or file name in run_dir); None: the final weights
weights = "ema"  # 'ema' or 'model' (the raw weights)
num_steps = 50  # Heun steps (the paper: 50 on ImageNet-256, 20 on ImageNet-64, 30 in the ablations)
cfg_scale = 1.5  # classifier-free guidance (the paper's ImageNet-256 value; 1.0 for unconditional models)
cfg_interval = None  # [σ_lo, σ_hi]: guide only inside (limited-interval guidance); None: everywhere
t_mode = "interp"  # σ → timestep: 'interp' (exact) or 'nearest' (the official code)
batch_size = 64  # images per sampler call per GPU
gpus = 1  # processes (torchrun when > 1)
vae_dir = None  # local SD-VAE folder, for latent runs
reference = None  # reference statistics .npz (ADM's VIRTUAL_imagenet256_labeled.npz, EDM's …), for FID
inception_weights = None  # local torch-fidelity Inception-v3 weights file, for FID

# %% tags=["hide-input"]
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from IPython.display import Markdown, display
from PIL import Image

from minsnr.core import atomic_write_json
from minsnr.fid import score_images
from minsnr.plotting import markdown_table
from minsnr.sampler import load_checkpoint_model, png_path, sample_run, seed_noise
from minsnr.trainer import load_run

if run_dir is None or not Path(run_dir).is_dir():
    raise FileNotFoundError(f"run_dir={run_dir!r}: pass a finished training run folder (-p run_dir …)")
model, run_config = load_run(run_dir, weights) if checkpoint is None else load_checkpoint_model(run_dir, checkpoint, weights)
cfg_scale = cfg_scale if model.config.num_classes is not None else 1.0  # unconditional models are never guided
suffix = "" if checkpoint is None and weights == "ema" else f"_{Path(checkpoint or 'final').stem}_{weights}"
out_dir = out_dir or str(Path(run_dir) / f"samples_{num_steps}steps_cfg{cfg_scale:g}{suffix}")
options = dict(run_dir=run_dir, out_dir=out_dir, num_images=num_images, seed_start=seed_start, num_steps=num_steps,
               cfg_scale=cfg_scale, cfg_interval=cfg_interval, batch_size=batch_size, vae_dir=vae_dir, t_mode=t_mode,
               checkpoint=checkpoint, weights=weights)
if gpus > 1:  # every process runs sample_run with the same arguments and takes its share of the seeds
    code = "import json, sys; from minsnr.sampler import sample_run; sample_run(**json.loads(sys.argv[1]))"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}", "--no-python",
           sys.executable, "-c", code, json.dumps(options)]
    subprocess.run(cmd, check=True)
else:
    print(f"wrote {sample_run(**options)} new images")

# %% [markdown]
# ## Evaluation

# %% tags=["hide-input"]
seeds = list(range(seed_start, seed_start + num_images))
paths = [png_path(out_dir, s) for s in seeds]
missing = [p.name for p in paths if not p.exists()]
if missing: raise FileNotFoundError(f"{len(missing)} images are missing in {out_dir}, e.g. {missing[:3]}")
images = torch.from_numpy(np.stack([np.array(Image.open(p)) for p in paths]))
images = images[:, None] if images.ndim == 3 else images.permute(0, 3, 1, 2)  # uint8 [N, C, H, W]
results = {"run_dir": str(run_dir), "checkpoint": checkpoint, "weights": weights, "num_images": num_images,
           "num_steps": num_steps, "cfg_scale": cfg_scale, "t_mode": t_mode}
if run_config.dataset in ("digits", "photo-patches"):
    labels = None
    if model.config.num_classes is not None:  # each seed's class is drawn from the seed alone, so it can be recomputed
        labels = torch.tensor([seed_noise(s, (1,), model.config.num_classes)[1] for s in seeds])
    scores = score_images(images, "fd-digits" if run_config.dataset == "digits" else "fd-photo", labels=labels)
    results.update({k: v for k, v in scores.items() if k.startswith("FD-") or k == "class_accuracy"})
if reference is not None:
    results["FID"] = score_images(images, "fid", reference=reference, inception_weights=inception_weights)["FID"]
atomic_write_json(Path(out_dir) / "metrics.json", results)
shown = ["num_images", "num_steps", "cfg_scale", "t_mode", "weights", *(k for k in results if k.startswith("FD-")),
         "class_accuracy", "FID"]
display(Markdown(markdown_table(["setting or metric", "value"], [
    [k, f"{results[k]:.4f}" if k in ("FID", "class_accuracy") or k.startswith("FD-") else results[k]]
    for k in shown if k in results])))
